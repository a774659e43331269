/** A named rule that recognises a secret: by a file's path, or by what a text holds. */
export interface SecretRule {
  /** Stable id, named in every issue the rule raises. */
  id: string
  /** What the rule recognises, for messages ("an SSH private key"). */
  what: string
  pattern: RegExp
}

/**
 * Paths of files that hold credentials by convention. Matched against a skill file's path (its name,
 * or its last two segments for `.aws/credentials`), case-insensitively. Public keys (`*.pub`,
 * certificates in `*.crt`) are not secrets and are allowed; `.env.example` and kin are refused with
 * every `.env.*`: a template goes under another name (`env.example`).
 */
export const SECRET_FILE_RULES: readonly SecretRule[] = [
  { id: 'dotenv', what: 'an environment file (.env, .env.*)', pattern: /(?:^|\/)\.env(?:\.[^/]*)?$/i },
  { id: 'pem-file', what: 'a PEM file (*.pem)', pattern: /\.pem$/i },
  { id: 'key-file', what: 'a key file (*.key)', pattern: /\.key$/i },
  {
    id: 'ssh-private-key',
    what: 'an SSH private key (id_rsa, id_dsa, id_ecdsa, id_ed25519)',
    pattern: /(?:^|\/)id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?$/i,
  },
  { id: 'pkcs12', what: 'a PKCS #12 key store (*.p12, *.pfx)', pattern: /\.(?:p12|pfx)$/i },
  { id: 'npmrc', what: 'an npm config, which holds registry tokens (.npmrc)', pattern: /(?:^|\/)\.npmrc$/i },
  { id: 'pypirc', what: 'a PyPI config, which holds upload tokens (.pypirc)', pattern: /(?:^|\/)\.pypirc$/i },
  { id: 'netrc', what: 'a netrc file of logins (.netrc, _netrc)', pattern: /(?:^|\/)[._]netrc$/i },
  {
    id: 'git-credentials',
    what: 'a Git credential store (.git-credentials)',
    pattern: /(?:^|\/)\.git-credentials$/i,
  },
  {
    id: 'credentials-json',
    what: 'a credentials file (credentials.json)',
    pattern: /(?:^|\/)credentials\.json$/i,
  },
  {
    id: 'aws-credentials',
    what: 'AWS credentials (.aws/credentials)',
    pattern: /(?:^|\/)\.aws\/credentials$/i,
  },
]

/**
 * Secrets recognised in a text by their shape. Each pattern is anchored on a fixed prefix and has
 * bounded repetition, so a scan is linear in the text. AWS's documented example key
 * (`AKIAIOSFODNN7EXAMPLE`) is not a secret and passes.
 */
export const SECRET_CONTENT_RULES: readonly SecretRule[] = [
  {
    id: 'pem-private-key',
    what: 'a PEM private-key block',
    pattern: /-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----/,
  },
  {
    id: 'aws-access-key-id',
    what: 'an AWS access key id',
    pattern: /\b(?:AKIA|ASIA)(?![0-9A-Z]{9}EXAMPLE\b)[0-9A-Z]{16}\b/,
  },
  {
    id: 'github-token',
    what: 'a GitHub token',
    pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22})/,
  },
  { id: 'anthropic-api-key', what: 'an Anthropic API key', pattern: /\bsk-ant-[A-Za-z0-9_-]{20}/ },
  { id: 'openai-api-key', what: 'an OpenAI API key', pattern: /\bsk-[A-Za-z0-9_-]{0,200}T3BlbkFJ/ },
  { id: 'slack-token', what: 'a Slack token', pattern: /\bxox[baprs]-[A-Za-z0-9-]{10}/ },
  { id: 'stripe-live-key', what: 'a Stripe live key', pattern: /\b[rs]k_live_[A-Za-z0-9]{20}/ },
  { id: 'google-api-key', what: 'a Google API key', pattern: /\bAIza[0-9A-Za-z_-]{35}/ },
]

/** The first rule that says a file at `path` holds credentials, or null. Pure. */
export function secretFileRule(path: string): SecretRule | null {
  return SECRET_FILE_RULES.find((rule) => rule.pattern.test(path)) ?? null
}

/** The first rule that finds a secret in `text`, or null. Pure. */
export function secretContentRule(text: string): SecretRule | null {
  return SECRET_CONTENT_RULES.find((rule) => rule.pattern.test(text)) ?? null
}
