import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { BUILTIN_PROFILE_FILES } from './builtin-profile-files.ts'
import { builtinProfilesFrom } from './builtins.ts'
import { loadBuiltinProfiles } from './builtins-node.ts'

const DIR = new URL('../../../sandbox-profiles/', import.meta.url)

describe('the built-in profiles', () => {
  it('as bundled for the Worker are the files in sandbox-profiles/ (run `npm run specs` when this fails)', () => {
    const onDisk = readdirSync(DIR)
      .filter((file) => /\.(ya?ml|json)$/.test(file))
      .sort()
      .map((file) => ({ file, text: readFileSync(new URL(file, DIR), 'utf8') }))
    expect(BUILTIN_PROFILE_FILES).toEqual(onDisk)
  })

  it('resolve the same from the bundle as from the files', () => {
    expect(builtinProfilesFrom(BUILTIN_PROFILE_FILES)).toEqual(loadBuiltinProfiles(DIR.pathname))
  })

  it('fail loudly on a broken one (a packaging bug), never skipping it', () => {
    expect(() => builtinProfilesFrom([{ file: 'bad.yaml', text: 'name: bad\nengines: [nope]\n' }])).toThrow(
      /built-in profile sandbox-profiles\/bad.yaml/,
    )
    expect(() => builtinProfilesFrom([{ file: 'anon.yaml', text: 'engines: [quickjs]\n' }])).toThrow(
      /no name/,
    )
  })
})
