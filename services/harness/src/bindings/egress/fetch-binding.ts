import { isIP } from 'node:net'
import type { JsonValue } from '@cordon/contracts'
import {
  type CheckedEgress,
  decideAddress,
  decideEgress,
  decideSecret,
  decideTunnel,
  ruleRef,
} from '@cordon/policy'
import {
  auditText,
  type BindingContext,
  type BindingHandler,
  type Handled,
  refused,
} from '../binding-context.ts'
import type { EgressLimits, Resolver } from './egress-options.ts'
import { type GuestRequest, readRequest, redirectTarget } from './guest-request.ts'
import type { EgressTransport, HopFailure } from './transport.ts'

export interface FetchBindingOptions {
  transport: EgressTransport
  resolver: Resolver
  ca: readonly string[] | null
  limits: EgressLimits
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * The `fetch` binding. Each hop: the URL is decided by the egress policy (parsed once, WHATWG) before
 * any DNS lookup; the host is resolved once and every answer must pass; the connection goes to the
 * checked address (no second lookup, so DNS rebinding fails); secret placeholders in headers become
 * values only for hosts the secret is granted for, and anywhere else the call is refused and audited
 * as an exfiltration attempt. Redirects are followed here, each hop decided afresh, up to the limit.
 * Bodies and times are capped; what returns to the guest has every used secret redacted.
 */
export function fetchBinding(options: FetchBindingOptions): BindingHandler {
  return async (context, op, args) => {
    // The container engine's proxy asks for tunnels (CONNECT); JavaScript guests make requests only.
    if (op === 'connect' && context.engine === 'container') return tunnel(context, args[0], options)
    if (op !== 'request') return refused('INVALID_ARGUMENT', `fetch has no operation "${op}"`)
    const request = readRequest(args[0], options.limits)
    if ('reply' in request) return request
    return follow(context, request, options)
  }
}

async function follow(
  context: BindingContext,
  first: GuestRequest,
  options: FetchBindingOptions,
): Promise<Handled> {
  const { profile, secrets, signal } = context
  const { limits } = options
  const started = performance.now()
  const deadline = started + limits.totalTimeoutMs
  const bytes = first.body?.length ?? 0
  let current = first
  const trail: string[] = []
  const detailOf = (extra: { [key: string]: JsonValue } = {}) => ({
    method: current.method,
    url: auditText(secrets.redactText(shortURL(current.url))),
    ...(trail.length > 1 ? { redirects: trail.length - 1 } : {}),
    ...extra,
  })

  const exfiltration = (grant: { message: string; code: string; rule: string }, secret: string) =>
    refused('SECRET_DENIED', grant.message, {
      reason: grant.code,
      rule: grant.rule,
      kind: 'secret.exfiltration',
      bytes,
      detail: detailOf({ secret }),
    })

  for (;;) {
    trail.push(current.url)
    // On every hop (a redirect's URL is the server's choice): a placeholder outside the headers, and
    // outside the query for a grant that allows it, never becomes a value. Refused wherever it goes.
    const query = searchOf(current.url)
    const outside = [
      ...new Set([
        ...secrets.find(current.url.replace(query, '')),
        ...secrets.find(current.body?.toString('latin1') ?? ''),
        ...secrets.find(query).filter((name) => !secrets.queryAllowed(name)),
      ]),
    ]
    if (outside.length > 0) {
      return refused(
        'SECRET_DENIED',
        'secrets may be sent only in request headers (or a query, where granted)',
        {
          reason: 'SECRET_OUTSIDE_HEADERS',
          rule: ruleRef(profile, `/secrets/${outside[0]}`),
          kind: 'secret.exfiltration',
          bytes,
          detail: detailOf({ secrets: outside }),
        },
      )
    }
    const decision = decideEgress(profile, { url: current.url, method: current.method })
    if (decision.effect === 'deny') {
      return refused('EGRESS_DENIED', decision.message, {
        reason: decision.code,
        rule: decision.rule,
        bytes,
        detail: detailOf(),
      })
    }
    const target = decision.request

    // After a redirect, the server chose the URL: a value it echoed into it (in any encoding the
    // redaction knows) must not travel further than its grant does.
    if (trail.length > 1) {
      for (const secret of secrets.findValues(
        `${current.url}\n${current.headers.map(([, v]) => v).join('\n')}`,
      )) {
        const grant = decideSecret(profile, secret, target)
        if (grant.effect === 'deny') return exfiltration(grant, secret)
      }
    }

    const headers: [string, string][] = []
    const used = new Set<string>()
    const search = searchOf(target.url)
    const inQuery = secrets.find(search)
    for (const [name, value] of [...current.headers, ['', search] as [string, string]]) {
      const names = name === '' ? inQuery : secrets.find(value)
      for (const secret of names) {
        const grant = decideSecret(profile, secret, target)
        if (grant.effect === 'deny') return exfiltration(grant, secret)
        if (secrets.value(secret) === null) {
          return refused('SECRET_UNAVAILABLE', `secret "${secret}" has no value in its source`, {
            rule: grant.rule,
            decision: 'error',
            bytes,
            detail: detailOf({ secret }),
          })
        }
        used.add(secret)
      }
      if (name !== '') headers.push([name, names.length === 0 ? value : secrets.inject(value, names)])
    }

    const address = await checkedAddress(context, target, options, deadline)
    if (address !== null && typeof address !== 'string')
      return { ...address, bytes, detail: { ...detailOf(), ...address.detail } }

    const remaining = deadline - performance.now()
    if (remaining <= 0) return timedOut('total', bytes, detailOf())
    // Whichever deadline is nearer names the timeout: the hop's own, or the whole call's.
    const which = remaining < limits.headersTimeoutMs ? 'total' : 'headers'
    const response = await options.transport.send({
      target,
      address,
      method: current.method,
      headers,
      body: current.body,
      search: inQuery.length === 0 ? search : secrets.inject(search, inQuery),
      ca: options.ca,
      headersTimeoutMs: Math.min(limits.headersTimeoutMs, remaining),
      signal,
    })
    if ('failed' in response) return hopFailed(response, which, bytes, detailOf({ address }))

    const location = response.headers.find(([name]) => name === 'location')?.[1]
    if (REDIRECTS.has(response.status) && location !== undefined && current.redirect !== 'manual') {
      response.discard()
      if (current.redirect === 'error') {
        return refused('FETCH_FAILED', 'the response is a redirect and redirect is "error"', {
          decision: 'error',
          bytes,
          detail: detailOf({ status: response.status }),
        })
      }
      if (trail.length > limits.maxRedirects) {
        return refused('TOO_MANY_REDIRECTS', `more than ${limits.maxRedirects} redirects`, {
          decision: 'error',
          bytes,
          detail: detailOf(),
        })
      }
      const next = redirectTarget(current, response.status, location)
      if (next === null) {
        return refused('FETCH_FAILED', 'the redirect location is not a valid URL', {
          decision: 'error',
          bytes,
          detail: detailOf({ status: response.status }),
        })
      }
      current = next
      continue
    }

    const empty = current.method === 'HEAD' || response.status === 204 || response.status === 304
    const body = empty
      ? { body: Buffer.alloc(0) }
      : await response.read(Math.min(limits.maxResponseBytes, context.replyBudget.bytes), deadline, signal)
    if (empty) response.discard()
    if ('tooLarge' in body && context.replyBudget.bytes < limits.maxResponseBytes) {
      return refused('REPLY_TOO_LARGE', "the bodies of this execution's binding calls exceed their budget", {
        decision: 'error',
        bytes,
        detail: detailOf({ status: response.status, address }),
      })
    }
    if ('tooLarge' in body) {
      return refused('RESPONSE_TOO_LARGE', `the response body exceeds ${limits.maxResponseBytes} bytes`, {
        decision: 'error',
        bytes,
        detail: detailOf({ status: response.status, address }),
      })
    }
    if ('failed' in body) {
      return hopFailed(body, 'total', bytes, detailOf({ status: response.status, address }))
    }
    context.replyBudget.bytes -= body.body.length
    // Content-Encoding and Content-Length describe the wire, not the decoded body the guest gets.
    const responseHeaders = response.headers
      .filter(([name]) => name !== 'content-encoding' && name !== 'content-length')
      .map(([name, value]): [string, string] => [name, secrets.redactText(value)])
    return {
      reply: {
        ok: true,
        value: {
          status: response.status,
          statusText: secrets.redactText(response.statusText),
          url: secrets.redactText(current.url),
          redirected: trail.length > 1,
          headers: responseHeaders,
        },
        bytes: secrets.redactBytes(body.body).toString('base64'),
      },
      decision: 'allow',
      code: 'ALLOWED',
      rule: target.rule,
      bytes,
      detail: detailOf({
        status: response.status,
        address,
        responseBytes: body.body.length,
        ...(used.size > 0 ? { secrets: [...used] } : {}),
      }),
    }
  }
}

/**
 * A CONNECT tunnel for the container engine's egress proxy: decided by host and port only (see
 * `decideTunnel`), the name resolved here and every answer checked, and the address that passed
 * handed back: the proxy connects to that address and no other (a pinned connect; it never looks the
 * name up itself). Secrets cannot be put into a tunnel (its content is encrypted end to end).
 */
async function tunnel(
  context: BindingContext,
  arg: JsonValue | undefined,
  options: FetchBindingOptions,
): Promise<Handled> {
  if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) {
    return refused('INVALID_ARGUMENT', 'connect: malformed request')
  }
  const { host, port } = arg
  if (typeof host !== 'string' || host.length > 300 || typeof port !== 'number') {
    return refused('INVALID_ARGUMENT', 'connect: malformed request')
  }
  const detail = { method: 'CONNECT', url: auditText(`${host}:${port}`) }
  const decision = decideTunnel(context.profile, { host, port })
  if (decision.effect === 'deny') {
    return refused('EGRESS_DENIED', decision.message, { reason: decision.code, rule: decision.rule, detail })
  }
  const target = decision.request
  const deadline = performance.now() + options.limits.totalTimeoutMs
  const address = await checkedAddress(context, target, options, deadline)
  if (address === null) return refused('EGRESS_DENIED', 'tunnels need a transport that pins addresses')
  if (typeof address !== 'string') return { ...address, detail: { ...detail, ...address.detail } }
  return {
    reply: { ok: true, value: { address, port: target.port, host: target.host } },
    decision: 'allow',
    code: 'ALLOWED',
    rule: target.rule,
    bytes: 0,
    detail: { ...detail, address: auditText(address) },
  }
}

/**
 * The address to connect to: the literal itself, or the first answer of one lookup, after every
 * answer passed the policy (one blocked answer refuses the call: a name that resolves to a private
 * address among public ones is not trusted with any of them). Null for a name where the transport
 * connects by name itself (see `EgressTransport.pinsAddress`): its answers were checked all the same,
 * so deny rules naming addresses and the private ranges hold, though the connection is not pinned.
 */
async function checkedAddress(
  context: BindingContext,
  target: CheckedEgress,
  options: FetchBindingOptions,
  deadline: number,
): Promise<string | Handled | null> {
  const resolver = options.resolver
  let answers: string[]
  if (target.address !== null) answers = [target.address]
  else {
    // The lookup counts against the call's time like the rest: a resolver that never answers (or
    // gives up when told to) ends the call at its deadline, not the execution at its wall time.
    const timeout = AbortSignal.timeout(Math.max(0, Math.ceil(deadline - performance.now())))
    const late = new Promise<'late'>((resolve) => timeout.addEventListener('abort', () => resolve('late')))
    try {
      const answer = await Promise.race([
        resolver.resolve(target.host, AbortSignal.any([context.signal, timeout])),
        late,
      ])
      if (answer === 'late') return dnsTimedOut(target)
      answers = answer
    } catch {
      if (timeout.aborted) return dnsTimedOut(target)
      answers = []
    }
  }
  if (answers.length === 0) {
    return refused('DNS_FAILED', `${target.host} did not resolve`, { decision: 'error', rule: target.rule })
  }
  for (const answer of answers) {
    // The socket is given this very text: it must be an address Node takes as is, never a name it
    // would look up again (`127.1`, ` 127.0.0.1`, a zone id).
    if (isIP(answer) === 0) {
      return refused('EGRESS_DENIED', `${target.host} resolved to something that is not an IP address`, {
        reason: 'INVALID_ADDRESS',
        rule: target.rule,
        detail: { resolved: answers.slice(0, 8).map((text) => auditText(text)) },
      })
    }
    const decision = decideAddress(context.profile, target, answer)
    if (decision.effect === 'deny') {
      return refused('EGRESS_DENIED', decision.message, {
        reason: decision.code,
        rule: decision.rule,
        detail: { resolved: answers.slice(0, 8).map((text) => auditText(text)) },
      })
    }
  }
  return target.address === null && !options.transport.pinsAddress ? null : (answers[0] as string)
}

function dnsTimedOut(target: CheckedEgress): Handled {
  return timedOut('total', 0, { host: target.host }, 'the DNS lookup did not finish in time')
}

function hopFailed(
  failure: HopFailure,
  which: 'headers' | 'total',
  bytes: number,
  detail: { [key: string]: JsonValue },
): Handled {
  if (failure.failed === 'timeout') return timedOut(which, bytes, detail, failure.message)
  if (failure.failed === 'aborted')
    return refused('ABORTED', failure.message, { decision: 'error', bytes, detail })
  return refused('FETCH_FAILED', failure.message, { decision: 'error', bytes, detail })
}

function timedOut(
  which: 'headers' | 'total',
  bytes: number,
  detail: { [key: string]: JsonValue },
  message = 'the request did not finish in time',
): Handled {
  return refused('FETCH_TIMEOUT', message, { reason: which.toUpperCase(), decision: 'error', bytes, detail })
}

/** The query of a URL (`?a=b`, or '' when none or unparsable). */
function searchOf(url: string): string {
  try {
    return new URL(url).search
  } catch {
    return ''
  }
}

/** Origin and path, without query or fragment, at most 200 characters (for audit records). */
function shortURL(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`.slice(0, 200)
  } catch {
    return url.slice(0, 200)
  }
}
