import { describe, expect, it } from 'vitest'
import { validateAgent } from './agent.ts'
import { parseDocument } from './documents.ts'

describe('parseDocument', () => {
  it('parses YAML, JSON and Markdown with front matter', () => {
    expect(parseDocument('a: 1\n', 'yaml')).toEqual({ ok: true, value: { a: 1 } })
    expect(parseDocument('{"a":1}', 'json')).toEqual({ ok: true, value: { a: 1 } })
    expect(parseDocument('---\na: 1\n---\n\nBody text.\n', 'markdown')).toEqual({
      ok: true,
      value: { a: 1, instructions: 'Body text.' },
    })
  })

  it.each([
    ['duplicate keys', 'a: 1\na: 2\n'],
    ['duplicate keys in a nested flow mapping', 'a:\n  b: {c: 1, c: 2}\n'],
    ['keys that become the same property (1 and "1")', '1: a\n"1": b\n'],
    [
      'flow collections 300 brackets deep (refused before parsing)',
      `a: ${'['.repeat(300)}${']'.repeat(300)}\n`,
    ],
    ['two documents', 'a: 1\n---\nb: 2\n'],
    ['an unclosed flow sequence', 'a: [1, 2\n'],
    [
      'an alias bomb',
      `a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c]\n`,
    ],
  ])('refuses YAML with %s', (_what, text) => {
    expect(parseDocument(text, 'yaml').ok).toBe(false)
  })

  it('refuses Markdown that states instructions twice', () => {
    const result = parseDocument('---\ninstructions: a\n---\nb\n', 'markdown')
    expect(result).toMatchObject({ ok: false, message: expect.stringContaining('twice') })
  })

  it('refuses Markdown whose front matter is not a mapping', () => {
    expect(parseDocument('---\n- a\n---\nbody\n', 'markdown').ok).toBe(false)
  })
})

describe('validateAgent', () => {
  const tool = { name: 'add', description: 'adds', language: 'javascript', code: 'export default 1' }

  it('accepts a full declaration and defaults a tool input schema', () => {
    const result = validateAgent({
      name: 'a',
      model: 'anthropic/claude-sonnet-4-6',
      sandbox: 'strict',
      tools: [tool],
    })
    expect(result).toMatchObject({ ok: true, agent: { tools: [{ input: { type: 'object' } }] } })
  })

  it.each([
    ['an unknown key', { name: 'a', sandbox: 'strict', sandbx: 1 }],
    ['two tools of one name', { name: 'a', sandbox: 'strict', tools: [tool, tool] }],
    ['a model without provider', { name: 'a', sandbox: 'strict', model: 'gpt' }],
    ['instructions over 64 KiB', { name: 'a', sandbox: 'strict', instructions: 'x'.repeat(70_000) }],
    [
      'a skill with a bad name',
      { name: 'a', sandbox: 'strict', skills: [{ name: 'Bad Name', description: 'd' }] },
    ],
    ['no sandbox', { name: 'a' }],
    [
      'a tool sandbox whose default name is not a profile name',
      { name: 'a', sandbox: 'strict', tools: [{ ...tool, name: 'Fetch', sandbox: { extends: 'strict' } }] },
    ],
    [
      'two inline sandboxes of one name',
      {
        name: 'a',
        sandbox: { extends: 'strict' },
        tools: [{ ...tool, sandbox: { name: 'a', extends: 'strict' } }],
      },
    ],
    [
      'a __proto__ key (kept as data by JSON.parse)',
      JSON.parse('{"name":"a","sandbox":"strict","__proto__":{"x":1}}'),
    ],
    ['a nested __proto__ key', JSON.parse('{"name":"a","sandbox":"strict","tools":[{"__proto__":{}}]}')],
  ])('refuses %s', (_what, document) => {
    expect(validateAgent(document).ok).toBe(false)
  })
})

describe('the bracket bound', () => {
  it('leaves brackets in quoted strings and balanced code in block scalars alone', () => {
    const code = `export default () => ${'['.repeat(40)}1${']'.repeat(40)}`
    const text = `name: x\nnote: "${'['.repeat(300)}"\nother: 'it''s ${'{'.repeat(300)}'\ncode: |\n  ${code}\n`
    expect(parseDocument(text, 'yaml')).toMatchObject({ ok: true })
  })
})
