import { request as httpRequest } from 'node:http'
import { Harness } from '@cordon/harness'
import { SqliteStore } from '@cordon/harness/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// The guest `fs` binding and the files API, attacked: one named attack per case, the safe outcome
// asserted. Guest code reaches the filesystem only through `fs`; operators through the files API.

let t: TestServer
const QUOTA = 4096
const limits = { cpuMs: 5000, wallMs: 20000, memoryMb: 64, outputBytes: 65536, bindingCalls: 1000 }

beforeAll(async () => {
  t = await startTestServer({ maxBodyBytes: 5 * 1024 * 1024 })
  const put = async (path: string, body: unknown) => {
    const response = await t.request('PUT', path, { body })
    expect(response.status, JSON.stringify(response.body)).toBe(200)
  }
  const base = { engines: ['quickjs'], languages: ['javascript'], limits }
  const kept = { access: 'read-write', scope: 'agent', quotaBytes: QUOTA }
  await put('/v1/profiles/fs-kept', {
    ...base,
    filesystem: { ...kept, deny: ['/workspace/private/**', '/workspace/**/*.key'] },
  })
  await put('/v1/profiles/fs-plain', { ...base, filesystem: kept })
  await put('/v1/profiles/fs-read', { ...base, filesystem: { ...kept, access: 'read' } })
  await put('/v1/profiles/fs-scratch', { ...base, filesystem: { access: 'read-write', quotaBytes: QUOTA } })
  await put('/v1/profiles/fs-hoard', {
    ...base,
    filesystem: { ...kept, quotaBytes: 1024 * 1024 },
  })
  await put('/v1/profiles/fs-big', { ...base, filesystem: { ...kept, quotaBytes: 16 * 1024 * 1024 } })
  await put('/v1/profiles/fs-none', base)
  for (const [agent, sandbox] of [
    ['alice', 'fs-kept'],
    ['bob', 'fs-kept'],
    ['walker', 'fs-kept'],
    ['filler', 'fs-kept'],
    ['confused', 'fs-plain'],
    ['reader', 'fs-read'],
    ['scratch', 'fs-scratch'],
    ['hoarder', 'fs-hoard'],
    ['big', 'fs-big'],
    ['nofs', 'fs-none'],
  ]) {
    await put(`/v1/agents/${agent}`, { sandbox })
  }
})
afterAll(async () => {
  await t.close()
})

/** Runs guest code as `agent`; `attempt(fn)` answers `{ ok, value }` or the error's `{ code, reason }`. */
async function guest(agent: string, code: string, input: unknown = null): Promise<Body> {
  const prelude =
    'const attempt = async (fn) => { try { return { ok: true, value: await fn() } } catch (e) { return { ok: false, code: e.code ?? String(e), reason: e.reason ?? null } } }\n'
  const { status, body } = await t.execute(prelude + code, { input }, agent)
  expect(status).toBe(200)
  expect(body.status, JSON.stringify(body.error)).toBe('ok')
  return body.result
}

/** An HTTP request sent with the path exactly as given (fetch would normalise dot segments first). */
function raw(
  method: string,
  path: string,
  body?: string | Uint8Array,
): Promise<{ status: number; body: Body }> {
  const { port } = new URL(t.server.url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, headers: { authorization: `Bearer ${TEST_TOKEN}` } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let parsed: unknown = text
          try {
            parsed = JSON.parse(text)
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const upload = (agent: string, path: string, content: string) =>
  t.request('PUT', `/v1/agents/${agent}/files/${path}`, { raw: content, contentType: 'text/plain' })
const listing = async (agent: string, path = ''): Promise<string[]> => {
  const res = await t.request('GET', `/v1/agents/${agent}/files${path === '' ? '' : `?path=${path}`}`)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return res.body.entries.map((entry: { name: string }) => entry.name)
}

/** Path forms that try to leave /workspace or to hide what they are. */
const TRAVERSALS: { attack: string; path: string; reason: string }[] = [
  { attack: 'a relative climb to /etc/passwd', path: '../../etc/passwd', reason: 'PATH_INVALID' },
  { attack: 'a climb from the root', path: '/workspace/../etc', reason: 'PATH_OUTSIDE_ROOT' },
  { attack: 'a climb from a subfolder', path: '/workspace/a/../../x', reason: 'PATH_OUTSIDE_ROOT' },
  { attack: 'a backslash climb', path: '..\\x', reason: 'PATH_INVALID' },
  {
    attack: 'a NUL byte that truncates in C',
    path: 'ok.txt\u0000/../../../etc/passwd',
    reason: 'PATH_INVALID',
  },
  { attack: 'a right-to-left override (U+202E)', path: 'invoice\u202efdp.exe', reason: 'PATH_INVALID' },
  { attack: 'a zero-width space (U+200B)', path: 'report\u200b.txt', reason: 'PATH_INVALID' },
  { attack: 'fullwidth solidi (U+FF0F)', path: '..\uff0f..\uff0fetc\uff0fpasswd', reason: 'PATH_INVALID' },
  { attack: 'a lone surrogate', path: 'a\ud800', reason: 'PATH_INVALID' },
  { attack: 'a 5000-character path', path: 'a'.repeat(5000), reason: 'PATH_INVALID' },
  { attack: 'a path of 200 segments', path: Array(200).fill('a').join('/'), reason: 'PATH_INVALID' },
  { attack: 'an absolute path elsewhere', path: '/etc/passwd', reason: 'PATH_OUTSIDE_ROOT' },
]

describe('attack catalogue: traversal through the guest fs binding', () => {
  it('holds every traversal form (guards against a catalogue that went empty)', () => {
    expect(TRAVERSALS).toHaveLength(12)
  })

  it.each(TRAVERSALS)('refuses $attack for every operation, writing nothing', async ({ path, reason }) => {
    const result = await guest(
      'walker',
      `const p = input.path
       export default {
         writeFile: await attempt(() => fs.writeFile(p, 'pwned')),
         readFile: await attempt(() => fs.readFile(p)),
         readdir: await attempt(() => fs.readdir(p)),
         stat: await attempt(() => fs.stat(p)),
         rm: await attempt(() => fs.rm(p, { recursive: true })),
       }`,
      { path },
    )
    for (const op of ['writeFile', 'readFile', 'readdir', 'stat', 'rm']) {
      expect(result[op], op).toEqual({ ok: false, code: 'FS_DENIED', reason })
    }
    expect(await listing('walker')).toEqual([])
  })

  it('keeps "%2e%2e" a literal name inside /workspace: the binding never percent-decodes', async () => {
    const result = await guest(
      'walker',
      `await fs.writeFile('%2e%2e/%2e%2e/etc/passwd', 'x')
       export default { root: await fs.readdir('/workspace'), deep: await fs.readdir('%2e%2e/%2e%2e') }`,
    )
    expect(result).toEqual({ root: ['%2e%2e'], deep: ['etc'] })
    expect(await listing('walker', '%252e%252e%2F%252e%252e%2Fetc')).toEqual(['passwd'])
    expect((await raw('DELETE', '/v1/agents/walker/files/%252e%252e?recursive=true')).status).toBe(204)
    expect(await listing('walker')).toEqual([])
  })

  it('gives no fs global to a profile without a filesystem, and no way to make links', async () => {
    expect(await guest('nofs', 'export default typeof fs')).toBe('undefined')
    expect(await guest('walker', 'export default Object.keys(fs).sort()')).toEqual([
      'readFile',
      'readdir',
      'rm',
      'stat',
      'writeFile',
    ])
  })
})

/** The same forms through the files API, sent as raw request paths (percent-encoded as a client would). */
const API_TRAVERSALS: { attack: string; path: string }[] = [
  { attack: 'encoded slashes climbing out', path: '..%2F..%2Fetc%2Fpasswd' },
  { attack: 'a climb from a subfolder', path: 'a%2F..%2F..%2Fx' },
  { attack: 'a backslash climb', path: '..%5Cx' },
  { attack: 'a NUL byte', path: 'ok.txt%00.png' },
  { attack: 'a right-to-left override', path: 'invoice%E2%80%AEfdp.exe' },
  { attack: 'a zero-width space', path: 'report%E2%80%8B.txt' },
  { attack: 'fullwidth solidi', path: '..%EF%BC%8F..%EF%BC%8Fetc' },
  { attack: 'an encoded lone surrogate', path: 'a%ED%A0%80' },
  { attack: 'a malformed escape', path: 'a%ZZ' },
  { attack: 'a leading slash (an absolute path)', path: '%2Fetc%2Fpasswd' },
  { attack: 'a 5000-character path', path: 'a'.repeat(5000) },
  { attack: 'a path of 200 segments', path: Array(200).fill('a').join('/') },
]

describe('attack catalogue: traversal through the files API', () => {
  it('holds every traversal form', () => {
    expect(API_TRAVERSALS).toHaveLength(12)
  })

  it.each(API_TRAVERSALS)(
    'refuses $attack with 400 PATH_INVALID for upload and download',
    async ({ path }) => {
      const put = await raw('PUT', `/v1/agents/alice/files/${path}`, 'pwned')
      expect(put.status).toBe(400)
      expect(put.body.error.code).toBe('PATH_INVALID')
      const get = await raw('GET', `/v1/agents/alice/files/${path}`)
      expect(get.body.error.code).toBe('PATH_INVALID')
      const list = await raw('GET', `/v1/agents/alice/files?path=${path}`)
      expect(list.body.error.code).toBe('PATH_INVALID')
      expect(await listing('alice')).toEqual([])
    },
  )

  it.each([
    ['%2e%2e out of the files route', '/v1/agents/alice/files/%2e%2e/%2e%2e/etc/passwd'],
    [
      '%2e%2e into another agent of the tenant',
      '/v1/agents/alice/files/a/%2e%2e/%2e%2e/%2e%2e/bob/files/planted',
    ],
    ['plain .. into another agent', '/v1/agents/alice/files/a/../../../bob/files/planted'],
    ['a single . segment', '/v1/agents/alice/files/./planted'],
  ])(
    'refuses a request target with dot segments (%s) before URL parsing resolves them',
    async (_, target) => {
      const res = await raw('PUT', target, 'pwned')
      expect([res.status, res.body.error.code]).toEqual([400, 'BAD_REQUEST'])
      expect(await listing('alice')).toEqual([])
      expect(await listing('bob')).not.toContain('planted')
    },
  )

  it('refuses to remove the root itself', async () => {
    // "a/.." in one URL segment: the URL parser keeps it, the path normalises to /workspace.
    const res = await raw('DELETE', '/v1/agents/alice/files/a%2F..?recursive=true')
    expect(res.status).toBe(400)
    expect(res.body.error.code).toBe('BAD_REQUEST')
  })
})

describe('attack: exhausting the quota', () => {
  it('refuses guest writes past quotaBytes (BYTES), changing nothing, not even new folders', async () => {
    const result = await guest(
      'filler',
      `const kb = 'x'.repeat(1000)
       const written = []
       for (let i = 0; i < 4; i++) written.push((await attempt(() => fs.writeFile('b' + i, kb))).ok)
       export default {
         written,
         fifth: await attempt(() => fs.writeFile('b4', kb)),
         newDir: await attempt(() => fs.writeFile('fresh/dir/b5', kb)),
         grow: await attempt(() => fs.writeFile('b0', kb + kb)),
         root: await fs.readdir('.'),
         b0: (await fs.stat('b0')).size,
       }`,
    )
    expect(result).toEqual({
      written: [true, true, true, true],
      fifth: { ok: false, code: 'QUOTA_EXCEEDED', reason: 'BYTES' },
      newDir: { ok: false, code: 'QUOTA_EXCEEDED', reason: 'BYTES' },
      grow: { ok: false, code: 'QUOTA_EXCEEDED', reason: 'BYTES' },
      root: ['b0', 'b1', 'b2', 'b3'],
      b0: 1000,
    })
    const api = await upload('filler', 'more.txt', 'x'.repeat(100))
    expect(api.status).toBe(413)
    expect(api.body.error.code).toBe('QUOTA_EXCEEDED')
  })

  it('refuses the entry past 10 000, from deep directories and then many small files', async () => {
    const result = await guest(
      'hoarder',
      `const deep = Array(100).fill('d').join('/')
       let dirs = 0
       let files = 0
       let first = null
       for (;;) { const r = await attempt(() => fs.writeFile('t' + dirs + '/' + deep + '/f', '')); if (!r.ok) { first = r; break } dirs++ }
       let second = null
       for (;;) { const r = await attempt(() => fs.writeFile('s' + files, 'x')); if (!r.ok) { second = r; break } files++ }
       export default { dirs, files, first, second }`,
    )
    // Each deep write adds 102 entries: 98 fit (9996), the 99th does not; then 4 small files fit.
    expect(result).toEqual({
      dirs: 98,
      files: 4,
      first: { ok: false, code: 'QUOTA_EXCEEDED', reason: 'ENTRIES' },
      second: { ok: false, code: 'QUOTA_EXCEEDED', reason: 'ENTRIES' },
    })
    const api = await upload('hoarder', 'one-more', '')
    expect(api.status).toBe(413)
    expect(api.body.error.code).toBe('QUOTA_EXCEEDED')
    expect((await raw('DELETE', '/v1/agents/hoarder/files/t0?recursive=true')).status).toBe(204)
    expect((await upload('hoarder', 'one-more', '')).status).toBe(201)
  })

  it('refuses a file over 4 MiB through the API (413 FILE_TOO_LARGE) and the guest (FILE_TOO_LARGE)', async () => {
    const api = await upload('big', 'huge.bin', 'x'.repeat(4 * 1024 * 1024 + 1))
    expect(api.status).toBe(413)
    expect(api.body.error.code).toBe('FILE_TOO_LARGE')
    const result = await guest(
      'big',
      `export default await attempt(() => fs.writeFile('huge.bin', new Uint8Array(4 * 1024 * 1024 + 1).fill(65)))`,
    )
    // The bridge refuses arguments over 4 MiB of JSON before the binding sees them.
    expect(result).toEqual({ ok: false, code: 'ARGUMENT_TOO_LARGE', reason: null })
    expect(await listing('big')).toEqual([])
  })
})

describe('attack: writing where the profile says read-only', () => {
  it('lets the guest read what the operator uploaded, and refuses its writes and removals (READ_ONLY)', async () => {
    expect((await upload('reader', 'input.csv', 'a,b\n1,2\n')).status).toBe(201)
    const result = await guest(
      'reader',
      `export default {
         read: await fs.readFile('input.csv'),
         overwrite: await attempt(() => fs.writeFile('input.csv', 'tampered')),
         create: await attempt(() => fs.writeFile('new.txt', 'x')),
         rm: await attempt(() => fs.rm('input.csv')),
         rmAll: await attempt(() => fs.rm('/workspace', { recursive: true })),
       }`,
    )
    expect(result).toEqual({
      read: 'a,b\n1,2\n',
      overwrite: { ok: false, code: 'FS_DENIED', reason: 'READ_ONLY' },
      create: { ok: false, code: 'FS_DENIED', reason: 'READ_ONLY' },
      rm: { ok: false, code: 'FS_DENIED', reason: 'READ_ONLY' },
      rmAll: { ok: false, code: 'FS_DENIED', reason: 'READ_ONLY' },
    })
    expect(await listing('reader')).toEqual(['input.csv'])
  })
})

describe('attack: reading what deny globs hide', () => {
  it('hides denied entries from readdir and refuses to read or remove them', async () => {
    for (const path of ['private/plan.txt', 'id.key', 'notes.txt', 'sub/deploy.key']) {
      expect((await upload('alice', path, 'secret')).status).toBe(201)
    }
    const result = await guest(
      'alice',
      `export default {
         root: await fs.readdir('.'),
         sub: await fs.readdir('sub'),
         plan: await attempt(() => fs.readFile('private/plan.txt')),
         key: await attempt(() => fs.stat('sub/deploy.key')),
         listPrivate: await attempt(() => fs.readdir('private')),
         rmPrivate: await attempt(() => fs.rm('private', { recursive: true })),
         rmSub: await attempt(() => fs.rm('sub', { recursive: true })),
       }`,
    )
    expect(result).toEqual({
      root: ['notes.txt', 'sub'],
      sub: [],
      plan: { ok: false, code: 'FS_DENIED', reason: 'FS_DENIED' },
      key: { ok: false, code: 'FS_DENIED', reason: 'FS_DENIED' },
      listPrivate: { ok: false, code: 'FS_DENIED', reason: 'FS_DENIED' },
      rmPrivate: { ok: false, code: 'FS_DENIED', reason: 'FS_DENIED' },
      rmSub: { ok: false, code: 'FS_DENIED', reason: 'FS_DENIED' },
    })
    expect(await listing('alice', 'sub')).toEqual(['deploy.key'])
    for (const path of ['private', 'sub', 'id.key', 'notes.txt']) {
      expect((await raw('DELETE', `/v1/agents/alice/files/${path}?recursive=true`)).status).toBe(204)
    }
  })
})

describe('attack: reaching another agent or execution', () => {
  it("never shows agent A's files to agent B, through the binding or the files API", async () => {
    await guest('alice', `await fs.writeFile('diary.txt', 'dear diary')`)
    const result = await guest(
      'bob',
      `export default {
         root: await fs.readdir('.'),
         read: await attempt(() => fs.readFile('diary.txt')),
         climb: await attempt(() => fs.readFile('../alice/diary.txt')),
       }`,
    )
    expect(result).toEqual({
      root: [],
      read: { ok: false, code: 'NOT_FOUND', reason: null },
      climb: { ok: false, code: 'FS_DENIED', reason: 'PATH_OUTSIDE_ROOT' },
    })
    expect((await t.request('GET', '/v1/agents/bob/files/diary.txt')).body.error.code).toBe('FILE_NOT_FOUND')
    const mine = await fetch(`${t.server.url}/v1/agents/alice/files/diary.txt`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    })
    expect(await mine.text()).toBe('dear diary')
    expect((await raw('GET', '/v1/agents/bob%2F..%2Falice/files/diary.txt')).status).toBe(400)
    expect((await raw('DELETE', '/v1/agents/alice/files/diary.txt')).status).toBe(204)
  })

  it("keeps one execution's scratch space from the next (scope: execution), and the API has none to offer", async () => {
    const first = await guest(
      'scratch',
      `await fs.writeFile('left.txt', 'behind'); export default await fs.readdir('.')`,
    )
    expect(first).toEqual(['left.txt'])
    expect(await guest('scratch', `export default await fs.readdir('.')`)).toEqual([])
    const api = await upload('scratch', 'input.txt', 'x')
    expect(api.status).toBe(409)
    expect(api.body.error.code).toBe('NO_AGENT_FILESYSTEM')
  })

  it('answers 404 AGENT_NOT_FOUND for an agent that does not exist', async () => {
    for (const [method, path] of [
      ['GET', '/v1/agents/ghost/files'],
      ['GET', '/v1/agents/ghost/files/a'],
      ['PUT', '/v1/agents/ghost/files/a'],
      ['DELETE', '/v1/agents/ghost/files/a'],
    ] as const) {
      const res = await raw(method, path, method === 'PUT' ? 'x' : undefined)
      expect(res.status).toBe(404)
      expect(res.body.error.code).toBe('AGENT_NOT_FOUND')
    }
  })

  it("never shows one tenant's files to another tenant's agent of the same name", () => {
    const store = new SqliteStore(':memory:')
    try {
      // Only the files of agents are used here: the supervisor is never called.
      const harness = new Harness({
        store,
        supervisor: {} as never,
        builtinProfiles: new Map(),
        engines: ['quickjs'],
      })
      const profile = JSON.stringify({
        engines: ['quickjs'],
        languages: ['javascript'],
        limits,
        filesystem: { access: 'read-write', scope: 'agent', quotaBytes: QUOTA },
      })
      for (const tenant of ['t1', 't2']) {
        harness.putProfile(tenant, 'p', profile, 'json')
        harness.putAgent(tenant, 'same', JSON.stringify({ sandbox: 'p' }), 'json')
      }
      harness.agentFiles('t1', 'same').put('report.txt', new TextEncoder().encode('t1 only'))
      const theirs = harness.agentFiles('t2', 'same')
      expect(theirs.list('')).toEqual([])
      expect(() => theirs.get('report.txt')).toThrow(expect.objectContaining({ code: 'FILE_NOT_FOUND' }))
      expect(() => theirs.remove('report.txt', false)).toThrow(
        expect.objectContaining({ code: 'FILE_NOT_FOUND' }),
      )
      theirs.put('report.txt', new TextEncoder().encode('t2 writes its own'))
      expect(new TextDecoder().decode(harness.agentFiles('t1', 'same').get('report.txt').data)).toBe(
        't1 only',
      )
      const space = `agent:same#${store.agentIncarnation('t1', 'same')}`
      expect(store.files.usage('t1', space)).toEqual({ bytes: 7, entries: 1 })
    } finally {
      store.close()
    }
  })
})

describe('attack: confusing files and directories', () => {
  it('refuses a file where a directory is, and a directory where a file is, through the guest', async () => {
    const result = await guest(
      'confused',
      `await fs.writeFile('d/inner.txt', 'keep')
       await fs.writeFile('f', 'file')
       export default {
         fileOverDir: await attempt(() => fs.writeFile('d', 'clobber')),
         dirUnderFile: await attempt(() => fs.writeFile('f/child', 'x')),
         deepUnderFile: await attempt(() => fs.writeFile('f/a/b/c', 'x')),
         readDir: await attempt(() => fs.readFile('d')),
         listFile: await attempt(() => fs.readdir('f')),
         rmDir: await attempt(() => fs.rm('d')),
         d: await fs.readdir('d'),
         f: await fs.readFile('f'),
       }`,
    )
    expect(result).toEqual({
      fileOverDir: { ok: false, code: 'IS_DIRECTORY', reason: null },
      dirUnderFile: { ok: false, code: 'NOT_DIRECTORY', reason: null },
      deepUnderFile: { ok: false, code: 'NOT_DIRECTORY', reason: null },
      readDir: { ok: false, code: 'IS_DIRECTORY', reason: null },
      listFile: { ok: false, code: 'NOT_DIRECTORY', reason: null },
      rmDir: { ok: false, code: 'NOT_EMPTY', reason: null },
      d: ['inner.txt'],
      f: 'file',
    })
  })

  it('refuses the same through the files API (409), leaving both as they were', async () => {
    expect((await upload('confused', 'd', 'clobber')).body.error.code).toBe('IS_DIRECTORY')
    expect((await upload('confused', 'f/child', 'x')).body.error.code).toBe('NOT_DIRECTORY')
    expect((await t.request('GET', '/v1/agents/confused/files/d')).body.error.code).toBe('IS_DIRECTORY')
    expect((await t.request('GET', '/v1/agents/confused/files?path=f')).body.error.code).toBe('NOT_DIRECTORY')
    const rm = await raw('DELETE', '/v1/agents/confused/files/d')
    expect(rm.status).toBe(409)
    expect(rm.body.error.code).toBe('NOT_EMPTY')
    expect(await listing('confused')).toEqual(['d', 'f'])
  })

  it('removes recursively by exact prefix: names with "%" and "_" do not widen a removal to siblings', async () => {
    for (const path of ['a%25/x', 'a_/x', 'ab/x', 'a%25b'])
      expect((await upload('confused', path, 'x')).status).toBe(201)
    expect((await raw('DELETE', '/v1/agents/confused/files/a%25?recursive=true')).status).toBe(204)
    expect((await raw('DELETE', '/v1/agents/confused/files/a_?recursive=true')).status).toBe(204)
    expect(await listing('confused')).toEqual(['a%b', 'ab', 'd', 'f'])
  })
})

describe('the files API serves bytes, never pages', () => {
  it('answers a download as an octet-stream attachment with nosniff, whatever the name says', async () => {
    const html = '<script>alert(document.cookie)</script>'
    expect((await upload('alice', 'page.html', html)).status).toBe(201)
    const res = await fetch(`${t.server.url}/v1/agents/alice/files/page.html`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    })
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('content-disposition')).toBe('attachment')
    expect(await res.text()).toBe(html)
    const binary = new Uint8Array([0, 255, 128, 10])
    const put = await fetch(`${t.server.url}/v1/agents/alice/files/bin/blob`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'image/png' },
      body: binary,
    })
    expect(put.status).toBe(201)
    const got = await fetch(`${t.server.url}/v1/agents/alice/files/bin/blob`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    })
    expect([...new Uint8Array(await got.arrayBuffer())]).toEqual([0, 255, 128, 10])
    const list = await t.request('GET', '/v1/agents/alice/files?path=bin')
    expect(list.body).toEqual({
      entries: [{ name: 'blob', type: 'file', size: 4, mtime: expect.any(String) }],
    })
    expect(await guest('alice', `export default [...await fs.readFile('bin/blob', null)]`)).toEqual([
      0, 255, 128, 10,
    ])
  })

  it('needs a bearer token for every files route', async () => {
    for (const [method, path] of [
      ['GET', '/v1/agents/alice/files'],
      ['PUT', '/v1/agents/alice/files/x'],
    ] as const) {
      const options = method === 'PUT' ? { auth: null, raw: 'x' } : { auth: null }
      expect((await t.request(method, path, options)).status).toBe(401)
    }
  })
})

describe('attack: re-reading a large file to make the host do unbounded work', () => {
  it('reads past the execution body budget are refused on the host, before the file is read', async () => {
    // 3 MiB in the kept space, uploaded by the operator.
    const put = await t.request('PUT', '/v1/agents/big/files/large.bin', {
      raw: 'x'.repeat(3 * 1024 * 1024),
      contentType: 'application/octet-stream',
    })
    expect(put.status).toBe(201)
    const result = await guest(
      'big',
      `const out = []
       for (let i = 0; i < 5; i++) out.push(await attempt(async () => (await fs.readFile('large.bin', { encoding: null })).length))
       export default out`,
    )
    expect(result).toEqual([
      { ok: true, value: 3 * 1024 * 1024 },
      { ok: false, code: 'REPLY_TOO_LARGE', reason: null },
      { ok: false, code: 'REPLY_TOO_LARGE', reason: null },
      { ok: false, code: 'REPLY_TOO_LARGE', reason: null },
      { ok: false, code: 'REPLY_TOO_LARGE', reason: null },
    ])
  })
})
