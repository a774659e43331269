import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

let t: TestServer
beforeAll(async () => {
  t = await startTestServer({ maxBodyBytes: 64 * 1024 })
})
afterAll(async () => {
  await t.close()
})

const yamlProfile = `name: tight
engines: [quickjs]
languages: [javascript]
limits: { cpuMs: 200, wallMs: 1000, memoryMb: 16, outputBytes: 4096, bindingCalls: 0 }
`

describe('agent declarations', () => {
  it('accepts JSON', async () => {
    const res = await t.request('PUT', '/v1/agents/json-agent', {
      body: { name: 'json-agent', sandbox: 'strict', instructions: 'Be brief.' },
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ name: 'json-agent', sandbox: 'strict', instructions: 'Be brief.' })
  })

  it('accepts YAML', async () => {
    const res = await t.request('PUT', '/v1/agents/yaml-agent', {
      raw: 'name: yaml-agent\nmodel: openai/gpt-5\nsandbox: strict\ntools:\n  - name: add\n    description: Adds\n    language: javascript\n    code: "export default ({a,b}) => a+b"\n',
      contentType: 'application/yaml',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ name: 'yaml-agent', model: 'openai/gpt-5', tools: [{ name: 'add' }] })
  })

  it('accepts Markdown with front matter, the body becoming the instructions', async () => {
    const res = await t.request('PUT', '/v1/agents/md-agent', {
      raw: '---\nname: md-agent\nsandbox: strict\n---\n# Role\n\nYou summarise.\n',
      contentType: 'text/markdown',
    })
    expect(res.status).toBe(200)
    expect(res.body.instructions).toBe('# Role\n\nYou summarise.')
  })

  it('accepts an inline sandbox profile', async () => {
    const res = await t.request('PUT', '/v1/agents/inline-agent', {
      body: {
        sandbox: {
          engines: ['quickjs'],
          languages: ['javascript'],
          limits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 },
        },
      },
    })
    expect(res.status).toBe(200)
    const run = await t.execute('export default 7', {}, 'inline-agent')
    expect(run.body).toMatchObject({ status: 'ok', result: 7 })
  })

  it('sniffs the format when the client sends no useful content type (curl -d)', async () => {
    const res = await t.request('PUT', '/v1/agents/sniffed', {
      raw: 'sandbox: strict\n',
      contentType: 'application/x-www-form-urlencoded',
    })
    expect(res.status).toBe(200)
  })

  it('lists, reads and deletes agents', async () => {
    const list = await t.request('GET', '/v1/agents')
    expect(list.body.items.map((a: { name: string }) => a.name)).toEqual(
      expect.arrayContaining(['example', 'json-agent', 'md-agent']),
    )
    expect((await t.request('DELETE', '/v1/agents/json-agent')).status).toBe(204)
    const gone = await t.request('GET', '/v1/agents/json-agent')
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe('AGENT_NOT_FOUND')
    expect((await t.request('DELETE', '/v1/agents/json-agent')).status).toBe(404)
  })
})

describe('profiles', () => {
  it('stores a YAML profile and answers the resolved profile', async () => {
    const put = await t.request('PUT', '/v1/profiles/tight', {
      raw: yamlProfile,
      contentType: 'application/yaml',
    })
    expect(put.status).toBe(200)
    const get = await t.request('GET', '/v1/profiles/tight')
    expect(get.body).toMatchObject({ name: 'tight', builtin: false, limits: { cpuMs: 200, memoryMb: 16 } })
  })

  it('lists built-in and own profiles', async () => {
    const list = await t.request('GET', '/v1/profiles')
    const names = list.body.items.map((p: { name: string; builtin: boolean }) => `${p.name}:${p.builtin}`)
    expect(names).toEqual(expect.arrayContaining(['strict:true', 'tight:false']))
  })

  it('refuses to replace a built-in profile (409)', async () => {
    const res = await t.request('PUT', '/v1/profiles/strict', { raw: yamlProfile.replace('tight', 'strict') })
    expect(res.status).toBe(409)
    expect(res.body.error.code).toBe('BUILTIN_PROFILE')
  })

  it('refuses a profile missing a limit: every limit is explicit', async () => {
    const res = await t.request('PUT', '/v1/profiles/partial', {
      body: { engines: ['quickjs'], languages: ['javascript'], limits: { cpuMs: 10 } },
    })
    expect(res.status).toBe(422)
    expect(res.body.error.issues.map((i: { path: string }) => i.path)).toContain('$.limits.wallMs')
  })

  it('refuses a limit above the ceiling', async () => {
    const res = await t.request('PUT', '/v1/profiles/huge', {
      raw: yamlProfile.replace('tight', 'huge').replace('memoryMb: 16', 'memoryMb: 999999'),
      contentType: 'application/yaml',
    })
    expect(res.status).toBe(422)
    expect(res.body.error.message).toContain('$.limits.memoryMb')
  })

  it('refuses an agent that names a profile that does not exist', async () => {
    const res = await t.request('PUT', '/v1/agents/orphan', { body: { sandbox: 'no-such-profile' } })
    expect(res.status).toBe(404)
    expect(res.body.error.code).toBe('PROFILE_NOT_FOUND')
  })
})

describe('bad input is a 4xx JSON error', () => {
  const cases: [
    string,
    () => Promise<{ status: number; body: { error: { code: string } } }>,
    number,
    string,
  ][] = [
    [
      'malformed JSON',
      () => t.request('PUT', '/v1/agents/x', { raw: '{"sandbox": ' }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'malformed YAML',
      () => t.request('PUT', '/v1/agents/x', { raw: 'sandbox: [strict', contentType: 'application/yaml' }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'YAML with duplicate keys',
      () =>
        t.request('PUT', '/v1/agents/x', {
          raw: 'sandbox: strict\nsandbox: other\n',
          contentType: 'application/yaml',
        }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'a YAML alias bomb',
      () =>
        t.request('PUT', '/v1/agents/x', {
          raw: `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`,
          contentType: 'application/yaml',
        }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'Markdown without front matter',
      () => t.request('PUT', '/v1/agents/x', { raw: '# just text', contentType: 'text/markdown' }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'an unknown key in an agent',
      () => t.request('PUT', '/v1/agents/x', { body: { sandbox: 'strict', sandbx: 'typo' } }),
      422,
      'VALIDATION_FAILED',
    ],
    [
      'an unknown key in a profile',
      () =>
        t.request('PUT', '/v1/profiles/x', {
          raw: `${yamlProfile.replace('tight', 'x')}netwrk: { allow: [] }\n`,
          contentType: 'application/yaml',
        }),
      422,
      'VALIDATION_FAILED',
    ],
    [
      'an unknown key in an execution request',
      () =>
        t.request('POST', '/v1/agents/example/executions', {
          body: { language: 'javascript', code: '1', timeout: 9 },
        }),
      422,
      'VALIDATION_FAILED',
    ],
    [
      'an execution without code',
      () => t.request('POST', '/v1/agents/example/executions', { body: { language: 'javascript' } }),
      422,
      'VALIDATION_FAILED',
    ],
    [
      'an unknown language',
      () => t.request('POST', '/v1/agents/example/executions', { body: { language: 'cobol', code: '1' } }),
      422,
      'VALIDATION_FAILED',
    ],
    [
      'a body naming another agent than the URL',
      () => t.request('PUT', '/v1/agents/x', { body: { name: 'y', sandbox: 'strict' } }),
      422,
      'NAME_MISMATCH',
    ],
    [
      'a body whose name is an object with a hostile toString',
      () => t.request('PUT', '/v1/agents/x', { raw: '{"name":{"toString":1},"sandbox":"strict"}' }),
      422,
      'NAME_MISMATCH',
    ],
    [
      'a JSON declaration nested past 64 levels',
      () =>
        t.request('PUT', '/v1/agents/x', {
          raw: `{"sandbox":"strict","tools":[{"name":"t","description":"d","language":"javascript","code":"1","input":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}]}`,
        }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'a YAML declaration nested past 64 levels',
      () =>
        t.request('PUT', '/v1/agents/x', {
          raw: `sandbox: strict\ndescription: ${'['.repeat(100)}1${']'.repeat(100)}\n`,
          contentType: 'application/yaml',
        }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'an invalid name in the URL',
      () => t.request('PUT', '/v1/agents/Bad%20Name', { body: { sandbox: 'strict' } }),
      400,
      'BAD_REQUEST',
    ],
    [
      'an oversized body',
      () =>
        t.request('PUT', '/v1/agents/x', {
          raw: JSON.stringify({ sandbox: 'strict', instructions: 'x'.repeat(70_000) }),
        }),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'JSON nested past the depth limit',
      () =>
        t.request('POST', '/v1/agents/example/executions', {
          raw: `{"language":"javascript","code":"1","input":${'['.repeat(200)}${']'.repeat(200)}}`,
        }),
      400,
      'MALFORMED_BODY',
    ],
    [
      'an unsupported content type',
      () => t.request('PUT', '/v1/agents/x', { raw: '<agent/>', contentType: 'application/xml' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'an empty body',
      () => t.request('PUT', '/v1/agents/x', { raw: '  ', contentType: 'application/yaml' }),
      400,
      'MALFORMED_BODY',
    ],
    ['a missing token', () => t.request('GET', '/v1/agents', { auth: null }), 401, 'UNAUTHENTICATED'],
    [
      'a wrong token',
      () => t.request('GET', '/v1/agents', { auth: 'not-the-token' }),
      401,
      'UNAUTHENTICATED',
    ],
    ['an unknown agent', () => t.execute('export default 1', {}, 'nobody'), 404, 'AGENT_NOT_FOUND'],
    ['an unknown execution', () => t.request('GET', '/v1/executions/ex_nope'), 404, 'EXECUTION_NOT_FOUND'],
    ['an unknown route', () => t.request('GET', '/v1/nothing'), 404, 'NOT_FOUND'],
  ]

  for (const [what, send, status, code] of cases) {
    it(`answers ${status} ${code} for ${what}`, async () => {
      const res = await send()
      expect(res.status).toBe(status)
      expect(res.body.error.code).toBe(code)
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/)
    })
  }

  it('counts a chunked body (no Content-Length) as it streams: 413 past the limit, accepted within it', async () => {
    const chunked = (text: string) => {
      const bytes = new TextEncoder().encode(text)
      return fetch(`${t.server.url}/v1/agents/chunked`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < bytes.length; at += 8192) controller.enqueue(bytes.subarray(at, at + 8192))
            controller.close()
          },
        }),
        duplex: 'half',
      } as RequestInit)
    }
    const tooBig = await chunked(JSON.stringify({ sandbox: 'strict', instructions: 'x'.repeat(70_000) }))
    expect(tooBig.status).toBe(413)
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE')
    const fits = await chunked(JSON.stringify({ sandbox: 'strict', instructions: 'x'.repeat(1000) }))
    expect(fits.status).toBe(200)
  })

  it('asks for a bearer token with WWW-Authenticate', async () => {
    const res = await t.request('GET', '/v1/agents', { auth: null })
    expect(res.headers.get('www-authenticate')).toBe('Bearer')
  })

  it('lost nothing: agents that failed validation were never stored', async () => {
    expect((await t.request('GET', '/v1/agents/x')).status).toBe(404)
  })
})

describe('policy refusals before running', () => {
  it('refuses a language the profile does not allow (403)', async () => {
    const res = await t.execute('print(1)', { language: 'python' })
    expect(res.status).toBe(403)
    expect(res.body.error.code).toBe('LANGUAGE_NOT_ALLOWED')
  })

  it('refuses an engine the profile does not allow (403)', async () => {
    const res = await t.execute('export default 1', { engine: 'isolate' })
    expect(res.status).toBe(403)
    expect(res.body.error.code).toBe('ENGINE_NOT_ALLOWED')
  })

  it('answers 422 for an allowed engine this deployment does not offer', async () => {
    const t = await startTestServer({ engines: ['quickjs', 'isolate'] })
    onTestFinished(() => t.close())
    await t.request('PUT', '/v1/profiles/wants-container', {
      body: {
        engines: ['container'],
        languages: ['python'],
        limits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 },
      },
    })
    await t.request('PUT', '/v1/agents/contained', { body: { sandbox: 'wants-container' } })
    const res = await t.execute('print(1)', { language: 'python' }, 'contained')
    expect(res.status).toBe(422)
    expect(res.body.error.code).toBe('ENGINE_UNAVAILABLE')
    expect(res.body.error.message).toMatch(/available: quickjs, isolate/)
  })

  it('answers 422 for the isolate engine under a memory limit smaller than its smallest heap', async () => {
    await t.request('PUT', '/v1/profiles/tiny-isolate', {
      body: {
        engines: ['isolate'],
        languages: ['javascript'],
        limits: { cpuMs: 100, wallMs: 500, memoryMb: 4, outputBytes: 1024, bindingCalls: 0 },
      },
    })
    await t.request('PUT', '/v1/agents/tiny', { body: { sandbox: 'tiny-isolate' } })
    const res = await t.execute('export default 1', {}, 'tiny')
    expect(res.status).toBe(422)
    expect(res.body.error).toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
      message: expect.stringMatching(/memoryMb of at least 8/),
    })
  })

  it("runs on the profile's first engine, or on the one a request names", async () => {
    await t.request('PUT', '/v1/profiles/isolate-first', {
      body: {
        engines: ['isolate', 'quickjs'],
        languages: ['javascript'],
        limits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 },
      },
    })
    await t.request('PUT', '/v1/agents/isolated', { body: { sandbox: 'isolate-first' } })
    const first = await t.execute('export default typeof Atomics', {}, 'isolated')
    expect(first.body).toMatchObject({ status: 'ok', engine: 'isolate', result: 'object' })
    const named = await t.execute('export default typeof Atomics', { engine: 'quickjs' }, 'isolated')
    expect(named.body).toMatchObject({ status: 'ok', engine: 'quickjs', result: 'undefined' })
    const stored = await t.request('GET', `/v1/executions/${first.body.id}`)
    expect(stored.body.engine).toBe('isolate')
  })
})

describe('the guest contract over HTTP', () => {
  it('runs TypeScript with types stripped', async () => {
    const res = await t.execute('const f = (n: number): number => n * 2\nexport default f(21)', {
      language: 'typescript',
    })
    expect(res.body).toMatchObject({ status: 'ok', result: 42, language: 'typescript' })
  })

  it('captures console output', async () => {
    const res = await t.execute('console.log("out", 1); console.error("err"); export default null')
    expect(res.body).toMatchObject({ status: 'ok', stdout: 'out 1\n', stderr: 'err\n' })
  })

  it('answers 200 with status error for a guest exception', async () => {
    const res = await t.execute('throw new TypeError("boom")')
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      status: 'error',
      error: { code: 'GUEST_EXCEPTION', message: 'TypeError: boom' },
    })
  })

  it('answers a syntax error as a guest error', async () => {
    const res = await t.execute('export default (')
    expect(res.body).toMatchObject({ status: 'error', error: { code: 'SYNTAX_ERROR' } })
  })
})
