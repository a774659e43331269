/** Severities, most severe first. */
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const
export type Severity = (typeof SEVERITIES)[number]

/** A review rule: a stable id (never renumbered), its severity, and what to do about a finding. */
export interface Rule {
  readonly id: string
  readonly severity: Severity
  readonly title: string
  readonly description: string
  readonly remediation: string
}

const rule = (
  id: string,
  severity: Severity,
  title: string,
  description: string,
  remediation: string,
): Rule => Object.freeze({ id, severity, title, description, remediation })

/** Every rule the review applies, by id. Ids are stable: CI gates and SARIF baselines key on them. */
export const RULES = Object.freeze({
  anyHost: rule(
    'CORDON-NET-001',
    'critical',
    'Egress to any host',
    'An allow rule with host "*" lets guest code reach every host on the internet.',
    'List the hosts the code needs, exactly or as "*.domain" of a domain you control.',
  ),
  publicSuffix: rule(
    'CORDON-NET-002',
    'high',
    'Wildcard over a public suffix',
    'A "*.suffix" rule over a public suffix (the Public Suffix List, with its private section: com, co.uk, github.io, workers.dev, s3.amazonaws.com, ...) or a shared namespace (amazonaws.com, windows.net, nip.io, ...) reaches hosts anyone can register or point anywhere.',
    'Name the exact hosts, or a wildcard under a domain you control.',
  ),
  privateAddresses: rule(
    'CORDON-NET-003',
    'high',
    'Private addresses allowed',
    'allowPrivateAddresses lets any allowed hostname resolve to loopback, private, link-local or cloud metadata addresses (SSRF into your network).',
    'Set allowPrivateAddresses to false; name the one internal address a rule needs as an IP literal instead.',
  ),
  privateLiteral: rule(
    'CORDON-NET-004',
    'high',
    'Rule names a private or metadata address',
    'An allow rule names a loopback, private, link-local or cloud metadata IP address directly.',
    'Remove the rule, or restrict it to the exact port, method and paths the code needs.',
  ),
  plainHTTP: rule(
    'CORDON-NET-005',
    'medium',
    'Plain-text HTTP allowed',
    'The rule allows the http scheme: requests and responses can be read and altered on the way.',
    'Allow https only.',
  ),
  wildcardWrites: rule(
    'CORDON-NET-006',
    'medium',
    'Writes to a wildcard host',
    'POST, PUT, PATCH or DELETE to a wildcard host gives guest code a channel to send data out.',
    'Allow write methods only to exact hosts, and only on the paths that need them.',
  ),
  oddPort: rule(
    'CORDON-NET-007',
    'low',
    'Non-standard port',
    'The rule allows a port other than 80 and 443, often an internal or admin service.',
    'Allow only the ports the service really listens on.',
  ),
  deadDeny: rule(
    'CORDON-NET-008',
    'info',
    'Deny rule overlaps no allow rule',
    'No allow rule reaches the host of this deny rule, so it changes nothing today.',
    'Keep it if it documents intent for child profiles; otherwise remove it.',
  ),
  secretWildcard: rule(
    'CORDON-SEC-001',
    'high',
    'Secret may be sent to a wildcard host',
    'A secret whose hosts include "*" or "*.domain" is sent to hosts that may not be yours.',
    'List the exact hosts that need the secret.',
  ),
  secretWritableHost: rule(
    'CORDON-SEC-002',
    'high',
    'Secret goes to a host that accepts writes',
    "The secret is sent to a host where the profile also allows POST, PUT, PATCH or DELETE: guest code can act with the secret's authority, not only read.",
    'Allow only read methods (GET, HEAD) to hosts that receive secrets, or split writes into a declared tool.',
  ),
  secretExfiltration: rule(
    'CORDON-SEC-003',
    'critical',
    'Secrets with broad egress',
    "Guest code can read data with a secret's authority and send it to hosts anyone controls (any host, a public-suffix wildcard, or writes to a wildcard).",
    'Narrow egress to the hosts that need it, or drop the secrets from this profile.',
  ),
  secretUnreachable: rule(
    'CORDON-SEC-004',
    'low',
    'Secret host not reachable',
    'No allow rule reaches this secret host over https, so the secret can never be used there.',
    'Remove the host from the secret, or add the egress rule it needs.',
  ),
  secretInQuery: rule(
    'CORDON-SEC-005',
    'low',
    'Secret may travel in a URL query',
    'Servers, proxies and caches log URLs: a secret put into a query outlives the request in places the secret was never granted to.',
    'Send the secret in a header (drop query: true) unless the API accepts it nowhere else.',
  ),
  fsWriteEgress: rule(
    'CORDON-FS-001',
    'medium',
    'Writable filesystem plus egress',
    'Guest code can stage data in the workspace and send it out through the allowed hosts.',
    'Make the filesystem read-only, or drop network egress.',
  ),
  storageQuota: rule(
    'CORDON-FS-002',
    'low',
    'Large storage quota',
    'The filesystem quota is above 256 MiB or the key-value quota above 16 MiB.',
    'Lower the quota to what the workload needs.',
  ),
  kvWriteEgress: rule(
    'CORDON-KV-001',
    'medium',
    'Writable key-value store plus egress',
    'Data written by one run persists for the next; with egress, one compromised run can plant instructions or stage data for later runs.',
    'Make the key-value store read-only, limit its keys, or drop network egress.',
  ),
  limitCeiling: rule(
    'CORDON-LIM-001',
    'medium',
    'Limit beyond sensible ceiling',
    'A limit is far above what an interactive agent execution needs (cpuMs > 30000, wallMs > 120000, memoryMb > 512, outputBytes > 4 MiB, bindingCalls > 10000, processes > 64, openFiles > 256).',
    'Lower the limit; split long work into several executions.',
  ),
  idleBindingCalls: rule(
    'CORDON-LIM-002',
    'info',
    'Binding calls with nothing to call',
    'bindingCalls is above zero but the profile grants no network, filesystem, key-value store, tools or secrets.',
    'Set bindingCalls to 0.',
  ),
  containerNetwork: rule(
    'CORDON-ENG-001',
    'high',
    'Container engine with network egress',
    'The container engine runs native code (any binary the image has); with egress, a sandbox escape or a proxy bug has a way out.',
    'Give container profiles no network, or move the network work into a declared tool.',
  ),
  nativeEngine: rule(
    'CORDON-ENG-002',
    'info',
    'Native code engine allowed',
    "The container engine runs python, bash and binaries: its attack surface is the Linux kernel behind seccomp, larger than a JavaScript engine's.",
    'Prefer quickjs or isolate for JavaScript work.',
  ),
  deadLanguage: rule(
    'CORDON-ENG-003',
    'low',
    'Language no allowed engine can run',
    'The profile allows a language that none of its engines runs, so requests in it always fail.',
    'Remove the language, or allow an engine that runs it.',
  ),
  toolWidens: rule(
    'CORDON-TOOL-001',
    'medium',
    'Tool reaches further than the code',
    "A tool that guest code may call runs under its own profile, which reaches hosts, secrets, storage or engines that the code's own profile does not: calling the tool widens what the code can reach.",
    'Make sure the tool validates its input and cannot be steered; narrow its profile to what it needs.',
  ),
  toolUndeclared: rule(
    'CORDON-TOOL-002',
    'low',
    'Granted tool not declared by the agent',
    'The profile grants a tool the agent does not declare.',
    'Remove the tool from the profile, or declare it in the agent.',
  ),
  unusedCapability: rule(
    'CORDON-AGENT-001',
    'low',
    'Capability no declared tool needs',
    "The profile grants a capability that none of the agent's declared tools uses (judged from their code).",
    'Remove the capability unless model-written code needs it.',
  ),
} as const)

export type RuleKey = keyof typeof RULES
