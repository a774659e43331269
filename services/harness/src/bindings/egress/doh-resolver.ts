import type { Resolver } from './egress-options.ts'

/** Cloudflare's DNS-over-HTTPS endpoint (JSON answers). */
export const CLOUDFLARE_DOH = 'https://cloudflare-dns.com/dns-query'
/** Answers one name may have, at most (more is refused as a resolution failure). */
const MAX_ANSWERS = 64

/**
 * A resolver over DNS-over-HTTPS (JSON), for runtimes without a system resolver (a Worker). Both A and
 * AAAA records are asked for; CNAME records in the answer are followed by the server, and only the
 * addresses are answered. With a transport that connects by name, the answers are checked but not
 * pinned: the runtime looks the name up again, so this holds the policy's address rules against what
 * the name resolves to, not against a name that changes its answers between the two lookups.
 */
export function dohResolver(endpoint = CLOUDFLARE_DOH): Resolver {
  return {
    async resolve(hostname, signal) {
      const lookups = await Promise.all(
        (['A', 'AAAA'] as const).map(async (type) => {
          const url = `${endpoint}?name=${encodeURIComponent(hostname)}&type=${type}`
          const response = await fetch(url, { headers: { accept: 'application/dns-json' }, signal })
          if (!response.ok) throw new Error(`DNS over HTTPS answered ${response.status}`)
          const body = (await response.json()) as { Status?: unknown; Answer?: unknown }
          // NXDOMAIN and friends: no addresses of this type.
          if (body.Status !== 0 || !Array.isArray(body.Answer)) return []
          return body.Answer.filter(
            (answer): answer is { type: number; data: string } =>
              answer !== null &&
              typeof answer === 'object' &&
              (answer.type === 1 || answer.type === 28) &&
              typeof answer.data === 'string',
          ).map((answer) => answer.data)
        }),
      )
      const answers = lookups.flat()
      if (answers.length > MAX_ANSWERS) throw new Error('too many answers')
      return answers
    },
  }
}
