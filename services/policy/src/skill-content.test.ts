import { describe, expect, it } from 'vitest'
import { validateAgent } from './agent.ts'
import { SECRET_CONTENT_RULES, SECRET_FILE_RULES } from './secret-files.ts'
import { SKILL_FILE_MAX_BYTES, SKILL_FILES_MAX_BYTES } from './skill-limits.ts'

type File = { path: string; content: string; encoding?: 'utf8' | 'base64' }

function agent(files: File[], extra: Record<string, unknown> = {}): unknown {
  return {
    name: 'a',
    sandbox: 'strict',
    tools: [{ name: 'lookup', description: 'd', language: 'javascript', code: 'export default 1' }],
    skills: [{ name: 's', description: 'd', body: 'Use it.', files, ...extra }],
  }
}

function issues(document: unknown): { path: string; message: string }[] {
  const result = validateAgent(document)
  return result.ok ? [] : result.issues
}

const base64 = (text: string) => btoa(text)

describe('skill content', () => {
  it('accepts text and base64 files, and allowed-tools naming declared and built-in tools', () => {
    const document = agent(
      [
        { path: 'scripts/run.py', content: 'print("hi")\n' },
        { path: 'assets/logo.png', content: base64('\x89PNG\r\n'), encoding: 'base64' },
        { path: 'keys/deploy.pub', content: 'ssh-ed25519 AAAAC3Nza... me@host\n' },
        { path: 'docs/aws.md', content: 'Example: AKIAIOSFODNN7EXAMPLE\n' },
        { path: 'env.example', content: 'API_URL=\n' },
      ],
      { 'allowed-tools': 'lookup execute_code  activate_skill' },
    )
    expect(issues(document)).toEqual([])
  })

  it.each([
    ['.env', 'dotenv'],
    ['config/.env.production', 'dotenv'],
    ['.env.example', 'dotenv'],
    ['tls/server.pem', 'pem-file'],
    ['tls/server.KEY', 'key-file'],
    ['ssh/id_rsa', 'ssh-private-key'],
    ['id_ed25519', 'ssh-private-key'],
    ['id_ecdsa_sk', 'ssh-private-key'],
    ['cert.p12', 'pkcs12'],
    ['cert.pfx', 'pkcs12'],
    ['.npmrc', 'npmrc'],
    ['.pypirc', 'pypirc'],
    ['.netrc', 'netrc'],
    ['_netrc', 'netrc'],
    ['.git-credentials', 'git-credentials'],
    ['gcp/credentials.json', 'credentials-json'],
    ['home/.aws/credentials', 'aws-credentials'],
  ])('attack: a secret file named %s is refused (rule %s)', (path, rule) => {
    expect(issues(agent([{ path, content: 'x' }]))).toEqual([
      { path: '$.skills[0].files[0].path', message: expect.stringContaining(`rule "${rule}"`) },
    ])
  })

  it.each([
    ['pem-private-key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----'],
    ['pem-private-key', '-----BEGIN OPENSSH PRIVATE KEY-----'],
    ['pem-private-key', '-----BEGIN ENCRYPTED PRIVATE KEY-----'],
    ['pem-private-key', '-----BEGIN PGP PRIVATE KEY BLOCK-----'],
    ['aws-access-key-id', 'aws_access_key_id = AKIA2E0A8F3B244C9986'],
    ['aws-access-key-id', 'ASIAY34FZKBOKMUTVV7A'],
    ['github-token', `token: ghp_${'a1B2'.repeat(9)}`],
    ['github-token', `github_pat_${'A1b2_'.repeat(6)}`],
    ['anthropic-api-key', `ANTHROPIC_API_KEY=sk-ant-api03-${'x'.repeat(40)}`],
    ['openai-api-key', `sk-proj-abc123T3BlbkFJxyz`],
    ['slack-token', 'xoxb-123456789012-abcdef'],
    ['stripe-live-key', `sk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`],
    ['google-api-key', `AIza${'S'.repeat(35)}`],
  ])('attack: a file holding a secret is refused (rule %s)', (rule, secret) => {
    const found = issues(agent([{ path: 'notes/readme.md', content: `Setup:\n${secret}\n` }]))
    expect(found).toEqual([
      { path: '$.skills[0].files[0].content', message: expect.stringContaining(`rule "${rule}"`) },
    ])
    expect(found[0]?.message).not.toContain(secret.slice(0, 20))
  })

  it('attack: a secret inside base64 content is found', () => {
    const content = base64('\x00\x01-----BEGIN EC PRIVATE KEY-----\x02')
    expect(issues(agent([{ path: 'blob.bin', content, encoding: 'base64' }]))).toEqual([
      { path: '$.skills[0].files[0].content', message: expect.stringContaining('pem-private-key') },
    ])
  })

  it('attack: a secret in the SKILL.md body is refused', () => {
    const document = agent([], { body: 'Use AKIA2E0A8F3B244C9986 to sign in.' })
    expect(issues(document)).toEqual([
      { path: '$.skills[0].body', message: expect.stringContaining('aws-access-key-id') },
    ])
  })

  it('refuses content that is not base64', () => {
    expect(issues(agent([{ path: 'a.bin', content: 'not base64!', encoding: 'base64' }]))).toEqual([
      { path: '$.skills[0].files[0].content', message: '"a.bin" is not valid base64' },
    ])
    expect(issues(agent([{ path: 'a.bin', content: 'QQ', encoding: 'base64' }]))).toHaveLength(1)
  })

  it('attack: an oversized file is refused by its decoded size', () => {
    const content = base64('x'.repeat(SKILL_FILE_MAX_BYTES + 1))
    expect(issues(agent([{ path: 'big.bin', content, encoding: 'base64' }]))).toEqual([
      {
        path: '$.skills[0].files[0].content',
        message: expect.stringContaining(`at most ${SKILL_FILE_MAX_BYTES}`),
      },
    ])
    // UTF-8 text is counted in bytes, not characters.
    const wide = 'é'.repeat(SKILL_FILE_MAX_BYTES / 2 + 1)
    expect(issues(agent([{ path: 'wide.txt', content: wide }]))).toHaveLength(1)
  })

  it('attack: files that add up past the agent limit are refused', () => {
    const count = Math.floor(SKILL_FILES_MAX_BYTES / SKILL_FILE_MAX_BYTES) + 1
    const files = Array.from({ length: count }, (_, i) => ({
      path: `f${i}.txt`,
      content: 'x'.repeat(SKILL_FILE_MAX_BYTES),
    }))
    expect(issues(agent(files))).toEqual([
      { path: '$.skills', message: expect.stringContaining('add up to') },
    ])
  })

  it('attack: allowed-tools naming an unknown tool is refused, each name once', () => {
    const document = agent([], { 'allowed-tools': 'lookup Bash(git:*) Bash(jq:*) Write Write' })
    expect(issues(document)).toEqual([
      {
        path: '$.skills[0].allowed-tools',
        message: expect.stringContaining(
          'names "Bash(git:*)", "Bash(jq:*)", "Write", which are neither a tool of this agent',
        ),
      },
    ])
  })

  it('keeps its rule catalogues from going empty', () => {
    expect(SECRET_FILE_RULES.length).toBeGreaterThanOrEqual(11)
    expect(SECRET_CONTENT_RULES.length).toBeGreaterThanOrEqual(8)
    const ids = [...SECRET_FILE_RULES, ...SECRET_CONTENT_RULES].map((rule) => rule.id)
    expect(new Set(ids).size).toBe(ids.length)
  })
})

describe('skill content, normalised before it is matched', () => {
  it.each([
    ['.env/', 'a trailing slash'],
    ['keys/id_rsa/', 'a trailing slash'],
    ['.aws//credentials', 'an empty segment'],
    ['a//b', 'an empty segment'],
  ])('attack: a credential file named %s (%s) is refused by the path rule', (path) => {
    expect(issues(agent([{ path, content: 'DB_PASSWORD=hunter2' }]))).toEqual([
      expect.objectContaining({ path: '$.skills[0].files[0].path' }),
    ])
  })

  it.each([
    ['description', { description: `use ghp_${'a1B2c3D4e5'.repeat(4).slice(0, 36)}` }],
    ['license', { license: '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----' }],
    ['metadata.token', { metadata: { token: `xoxb-${'1234567890'.repeat(3)}` } }],
  ])('attack: a credential in the front matter field %s is refused', (field, extra) => {
    expect(issues(agent([], extra))).toEqual([
      expect.objectContaining({
        path: `$.skills[0].${field}`,
        message: expect.stringContaining('never ship credentials'),
      }),
    ])
  })

  it('bounds metadata to 64 entries', () => {
    const metadata = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))
    expect(issues(agent([], { metadata }))).toEqual([
      expect.objectContaining({ path: '$.skills[0].metadata' }),
    ])
  })
})

describe('a tool named like the skill loader', () => {
  it('is refused on an agent with skills (runs load skills through activate_skill)', () => {
    const document = agent([]) as { tools: { name: string }[] }
    document.tools.push({ ...document.tools[0], name: 'activate_skill' } as { name: string })
    expect(issues(document)).toEqual([expect.objectContaining({ path: '$.tools[1].name' })])
  })
})
