import { describe, expect, it } from 'vitest'
import { parseSkillMarkdown } from './skills.ts'

const SKILL = `---
name: pdf-tools
description: Extract text and tables from PDF files.
license: Apache-2.0
compatibility: Needs python3
metadata:
  author: example
  version: "1.0"
allowed-tools: execute_code Bash(git:*)
---
# PDF tools

Use scripts/extract.py.
`

describe('parseSkillMarkdown', () => {
  it('parses every front-matter field of the specification and the body', () => {
    expect(parseSkillMarkdown(SKILL, { folder: 'pdf-tools' })).toEqual({
      ok: true,
      skill: {
        name: 'pdf-tools',
        description: 'Extract text and tables from PDF files.',
        license: 'Apache-2.0',
        compatibility: 'Needs python3',
        metadata: { author: 'example', version: '1.0' },
        'allowed-tools': 'execute_code Bash(git:*)',
        body: '# PDF tools\n\nUse scripts/extract.py.',
      },
    })
  })

  it('accepts a skill with only a name and a description, and an empty body', () => {
    expect(parseSkillMarkdown('---\nname: a\ndescription: b\n---\n')).toEqual({
      ok: true,
      skill: { name: 'a', description: 'b', body: '' },
    })
  })

  it.each([
    ['an upper-case letter', 'Pdf'],
    ['a leading hyphen', '-pdf'],
    ['a trailing hyphen', 'pdf-'],
    ['consecutive hyphens', 'pdf--tools'],
    ['an underscore', 'pdf_tools'],
    ['65 characters', 'a'.repeat(65)],
  ])('refuses a name with %s', (_what, name) => {
    const result = parseSkillMarkdown(`---\nname: "${name}"\ndescription: d\n---\n`)
    expect(result).toMatchObject({ ok: false, issues: [{ path: '$.name' }] })
  })

  it('accepts a 64-character name', () => {
    expect(parseSkillMarkdown(`---\nname: ${'a'.repeat(64)}\ndescription: d\n---\n`).ok).toBe(true)
  })

  it('refuses a name that differs from the skill folder', () => {
    const result = parseSkillMarkdown('---\nname: pdf\ndescription: d\n---\n', { folder: 'docx' })
    expect(result).toEqual({
      ok: false,
      issues: [{ path: '$.name', message: expect.stringContaining('folder, "docx"') }],
    })
  })

  it.each([
    ['an empty description', 'name: a\ndescription: ""\n', '$.description'],
    ['a description over 1024 characters', `name: a\ndescription: ${'d'.repeat(1025)}\n`, '$.description'],
    [
      'compatibility over 500 characters',
      `name: a\ndescription: d\ncompatibility: ${'c'.repeat(501)}\n`,
      '$.compatibility',
    ],
    [
      'metadata that is not a string map',
      'name: a\ndescription: d\nmetadata: { version: 1 }\n',
      '$.metadata.version',
    ],
    ['allowed-tools that is a list', 'name: a\ndescription: d\nallowed-tools: [a, b]\n', '$.allowed-tools'],
    ['a missing description', 'name: a\n', '$.description'],
  ])('refuses %s', (_what, front, path) => {
    expect(parseSkillMarkdown(`---\n${front}---\nbody\n`)).toMatchObject({ ok: false, issues: [{ path }] })
  })

  it('refuses an unknown front-matter key, naming it', () => {
    const result = parseSkillMarkdown('---\nname: a\ndescription: d\nversion: 2\n---\n')
    expect(result).toEqual({
      ok: false,
      issues: [{ path: '$.version', message: expect.stringContaining('not a SKILL.md front-matter field') }],
    })
  })

  it('refuses files and body given in the front matter', () => {
    expect(parseSkillMarkdown('---\nname: a\ndescription: d\nfiles: []\n---\n')).toMatchObject({
      ok: false,
      issues: [{ path: '$.files' }],
    })
    expect(parseSkillMarkdown('---\nname: a\ndescription: d\nbody: x\n---\n')).toMatchObject({
      ok: false,
      issues: [{ path: '$.body' }],
    })
  })

  it('refuses a body over 64 KiB', () => {
    const result = parseSkillMarkdown(`---\nname: a\ndescription: d\n---\n${'x'.repeat(64 * 1024 + 1)}`)
    expect(result).toMatchObject({ ok: false, issues: [{ path: '$.body' }] })
  })

  it.each([
    ['no front matter', '# Just a heading\n'],
    [
      'an alias bomb',
      '---\na: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c]\n---\n',
    ],
    ['a custom tag', '---\nname: !!js/function "function () {}"\ndescription: d\n---\n'],
    ['duplicate keys', '---\nname: a\nname: b\ndescription: d\n---\n'],
    ['front matter that is a list', '---\n- a\n---\n'],
  ])('refuses YAML with %s', (_what, text) => {
    expect(parseSkillMarkdown(text)).toMatchObject({ ok: false, issues: [{ path: '$' }] })
  })

  it('refuses a __proto__ key', () => {
    const result = parseSkillMarkdown('---\nname: a\ndescription: d\nmetadata: { __proto__: x }\n---\n')
    expect(result).toMatchObject({ ok: false, issues: [{ path: '$.metadata.__proto__' }] })
  })
})
