import { CordonError } from '@cordon/contracts'
import { describe, expect, it } from 'vitest'
import { agentBundleDocument, agentFromBundle } from './agent-bundle.ts'
import type { ArchiveFile } from './archive.ts'
import { tar, zip } from './test-archives.ts'

const SKILL =
  '---\nname: pdf\ndescription: Reads PDFs.\nallowed-tools: execute_code\n---\n# PDF\n\nRun scripts/x.py.\n'

function bundle(files: Record<string, string | Uint8Array>): ArchiveFile[] {
  return Object.entries(files).map(([path, data]) => ({
    path,
    data: typeof data === 'string' ? new TextEncoder().encode(data) : data,
  }))
}

describe('agentFromBundle', () => {
  it('builds the agent from agent.yaml and skills/<name>/, text as utf8 and binary as base64', () => {
    const result = agentFromBundle(
      bundle({
        'agent.yaml': 'sandbox: strict\ninstructions: Be brief.\n',
        'skills/pdf/SKILL.md': SKILL,
        'skills/pdf/scripts/x.py': 'print(1)\n',
        'skills/pdf/assets/logo.png': new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0xff, 0x00]),
      }),
    )
    expect(result).toEqual({
      ok: true,
      document: {
        sandbox: 'strict',
        instructions: 'Be brief.',
        skills: [
          {
            name: 'pdf',
            description: 'Reads PDFs.',
            'allowed-tools': 'execute_code',
            body: '# PDF\n\nRun scripts/x.py.',
            files: [
              { path: 'scripts/x.py', content: 'print(1)\n', encoding: 'utf8' },
              { path: 'assets/logo.png', content: 'iVBOR/8A', encoding: 'base64' },
            ],
          },
        ],
      },
    })
  })

  it('reads AGENT.md (front matter, the body as instructions) and agent.json, and adds to inline skills', () => {
    const md = agentFromBundle(bundle({ 'AGENT.md': '---\nsandbox: strict\n---\nYou help.\n' }))
    expect(md).toEqual({ ok: true, document: { sandbox: 'strict', instructions: 'You help.' } })
    const inline = { name: 'inline', description: 'd' }
    const json = agentFromBundle(
      bundle({
        'agent.json': JSON.stringify({ sandbox: 'strict', skills: [inline] }),
        'skills/pdf/SKILL.md': SKILL,
      }),
    )
    expect(json).toMatchObject({ ok: true, document: { skills: [inline, { name: 'pdf' }] } })
  })

  it.each([
    ['no agent file', { 'skills/pdf/SKILL.md': SKILL }, '$', 'no agent file'],
    [
      'two agent files',
      { 'agent.yaml': 'sandbox: strict', 'AGENT.md': '---\na: 1\n---\n' },
      '$',
      'several agent files',
    ],
    [
      'a file outside skills/',
      { 'agent.yaml': 'sandbox: strict', 'README.md': '# hi' },
      'README.md',
      'neither the agent file',
    ],
    [
      'a file directly in skills/',
      { 'agent.yaml': 'sandbox: strict', 'skills/notes.md': '# hi' },
      'skills/notes.md',
      'neither',
    ],
    [
      'a skill without SKILL.md',
      { 'agent.yaml': 'sandbox: strict', 'skills/pdf/x.py': '1' },
      'skills/pdf/',
      'has no SKILL.md',
    ],
    [
      'a skill named unlike its folder',
      { 'agent.yaml': 'sandbox: strict', 'skills/docx/SKILL.md': SKILL },
      'skills/docx/SKILL.md:$.name',
      'folder, "docx"',
    ],
    [
      'an unknown front-matter key',
      {
        'agent.yaml': 'sandbox: strict',
        'skills/pdf/SKILL.md': SKILL.replace('name: pdf', 'name: pdf\nauthor: me'),
      },
      'skills/pdf/SKILL.md:$.author',
      'not a SKILL.md front-matter field',
    ],
    [
      'a SKILL.md that is not UTF-8',
      { 'agent.yaml': 'sandbox: strict', 'skills/pdf/SKILL.md': new Uint8Array([0xff, 0xfe]) },
      'skills/pdf/SKILL.md',
      'not UTF-8',
    ],
    [
      'a malformed agent file',
      { 'agent.yaml': 'a: [1', 'skills/pdf/SKILL.md': SKILL },
      'agent.yaml',
      'malformed YAML',
    ],
    ['an agent file that is a list', { 'agent.yaml': '- a' }, 'agent.yaml:$', 'must be an object'],
    [
      'a resource path the schema refuses',
      { 'agent.yaml': 'sandbox: strict', 'skills/pdf/SKILL.md': SKILL, 'skills/pdf/My Notes.md': 'x' },
      'skills/pdf/My Notes.md',
      'relative path of letters',
    ],
    [
      'a skill declared inline and bundled',
      {
        'agent.yaml': 'sandbox: strict\nskills: [{ name: pdf, description: d }]',
        'skills/pdf/SKILL.md': SKILL,
      },
      'skills/pdf/SKILL.md',
      'also declares inline ($.skills[0])',
    ],
    [
      'inline skills that are not a list',
      { 'agent.yaml': 'sandbox: strict\nskills: pdf', 'skills/pdf/SKILL.md': SKILL },
      'agent.yaml:$.skills',
      'must be a list',
    ],
  ] as const)('refuses %s', (_what, files, path, message) => {
    const result = agentFromBundle(bundle(files))
    expect(result.ok).toBe(false)
    expect(result.ok ? [] : result.issues).toContainEqual({ path, message: expect.stringContaining(message) })
  })
})

describe('agentBundleDocument', () => {
  it('reads a tar and a zip bundle into the same document', async () => {
    const entries = [
      { name: 'agent.yaml', data: 'sandbox: strict\n' },
      { name: 'skills/pdf/SKILL.md', data: SKILL },
    ]
    const fromTar = await agentBundleDocument(tar(entries), 'tar')
    expect(await agentBundleDocument(zip(entries), 'zip')).toEqual(fromTar)
    expect(fromTar).toMatchObject({ sandbox: 'strict', skills: [{ name: 'pdf' }] })
  })

  it.each([
    ['a malformed archive', new Uint8Array(10), 'MALFORMED_BODY'],
    ['an unsafe entry', tar([{ name: 'skills/pdf/x', type: '2', linkName: '/etc' }]), 'MALFORMED_BODY'],
    [
      'too many entries',
      tar(Array.from({ length: 257 }, (_, i) => ({ name: `f${i}` }))),
      'PAYLOAD_TOO_LARGE',
    ],
    ['a bundle that is not an agent', tar([{ name: 'README.md', data: 'x' }]), 'VALIDATION_FAILED'],
  ])('throws %s as %s', async (_what, bytes, code) => {
    const error = await agentBundleDocument(bytes, 'tar').catch((thrown: unknown) => thrown)
    expect(error).toBeInstanceOf(CordonError)
    expect(error).toMatchObject({ code })
  })
})
