/**
 * Bash scripts for what the files API cannot do. Every value that reaches a script (a path, a
 * directory, an environment value) goes through `quote`: one single-quoted word, in which bash
 * expands nothing (`$()`, backquotes, globs, newlines stay literal). Names of environment variables
 * are checked against `ENV_NAME`; NUL, which no bash word can hold, is refused.
 */

/** The names `exec` exports: a shell identifier. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** One bash word whose value is exactly `value`. */
export function quote(value: string): string {
  if (value.includes('\0')) throw new TypeError('a shell word cannot hold NUL')
  return `'${value.replaceAll("'", `'\\''`)}'`
}

/** Scripts run with the C locale so that the errors they print read the same everywhere. */
const PRELUDE = 'export LC_ALL=C'

/** Two lines `<mode hex> <size> <mtime s.ms>`: the path itself (lstat), then what it names (stat). */
export function statScript(path: string): string {
  return `${PRELUDE}\np=${quote(path)}\nstat -c '%f %s %.3Y' -- "$p" && stat -L -c '%f %s %.3Y' -- "$p"\n`
}

/** Prints `yes` when the path names something (following symbolic links), `no` otherwise. */
export function existsScript(path: string): string {
  return `${PRELUDE}\nif [ -e ${quote(path)} ]; then echo yes; else echo no; fi\n`
}

export function mkdirScript(path: string, recursive: boolean): string {
  return `${PRELUDE}\nmkdir ${recursive ? '-p ' : ''}-- ${quote(path)}\n`
}

/** `rm`'s flags have fs.rm's meaning: -f ignores a missing path, -r takes a directory's contents. */
export function rmScript(path: string, recursive: boolean, force: boolean): string {
  const flags = `${recursive ? 'r' : ''}${force ? 'f' : ''}`
  return `${PRELUDE}\nrm ${flags === '' ? '' : `-${flags} `}-- ${quote(path)}\n`
}

/** A directory's entry names, one base64 line each (names may hold newlines or any byte). */
export function readdirScript(path: string): string {
  return [
    PRELUDE,
    `cd -- ${quote(path)} || exit 1`,
    'shopt -s dotglob nullglob',
    `for f in *; do printf '%s' "$f" | base64 -w0; echo; done`,
    '',
  ].join('\n')
}

/** A regular file's bytes in base64 (following symbolic links; never opening a FIFO or a device). */
export function readScript(path: string): string {
  return [
    PRELUDE,
    `p=${quote(path)}`,
    'if [ -f "$p" ]; then exec base64 -w0 -- "$p"; fi',
    `if [ -d "$p" ]; then echo 'Is a directory' >&2; exit 1; fi`,
    `if [ -e "$p" ]; then echo 'not a regular file' >&2; exit 1; fi`,
    'stat -- "$p" > /dev/null',
    'exit 1',
    '',
  ].join('\n')
}

/**
 * Writes base64-encoded bytes to the path (following symbolic links), creating its parent first;
 * refuses anything that exists and is not a regular file (never opens a FIFO or a device).
 */
export function writeScript(path: string, parent: string, base64: string): string {
  const delimiter = heredocDelimiter(base64)
  return [
    PRELUDE,
    `p=${quote(path)}`,
    `if [ -d "$p" ]; then echo 'Is a directory' >&2; exit 1; fi`,
    `if [ -e "$p" ] && [ ! -f "$p" ]; then echo 'not a regular file' >&2; exit 1; fi`,
    `mkdir -p -- ${quote(parent)} || exit 1`,
    `base64 -d > "$p" <<'${delimiter}'`,
    base64,
    delimiter,
    '',
  ].join('\n')
}

export interface CommandScriptOptions {
  command: string
  cwd: string
  env: Readonly<Record<string, string>>
  /** Stop the command after this long (coreutils `timeout`: exit 124), or null for no deadline. */
  deadlineMs: number | null
  /** After the deadline's SIGTERM, how long until SIGKILL. */
  killAfterMs: number
}

/**
 * Runs `command` in a child bash that reads it from a here-document on fd 3 (so the command keeps
 * its own stdin and is not limited by the size of one argument), after `cd` and `export`. With a
 * deadline the child runs under `timeout`, which kills its whole process group at the deadline.
 */
export function commandScript(options: CommandScriptOptions): string {
  const dir = quote(options.cwd)
  const lines = [
    `cd -- ${dir} 2>/dev/null || { printf 'cordon: cannot change to the directory %s\\n' ${dir} >&2; exit 1; }`,
  ]
  for (const [name, value] of Object.entries(options.env)) {
    if (!ENV_NAME.test(name)) throw new TypeError(`"${name.slice(0, 64)}" is not a valid environment name`)
    lines.push(`export ${name}=${quote(value)}`)
  }
  const delimiter = heredocDelimiter(options.command)
  const run =
    options.deadlineMs === null
      ? 'bash'
      : `timeout -k ${seconds(options.killAfterMs)} ${seconds(options.deadlineMs)} bash`
  // fd 3 is closed on the command's first line, so its children do not inherit the script.
  lines.push(`${run} /dev/fd/3 3<<'${delimiter}'`, `exec 3<&- ; ${options.command}`, delimiter, '')
  return lines.join('\n')
}

function seconds(ms: number): string {
  return (Math.max(1, Math.ceil(ms)) / 1000).toFixed(3)
}

/** A here-document delimiter that is no line of `body`. */
function heredocDelimiter(body: string): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(12))
    const delimiter = `CORDON_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`
    if (!body.includes(delimiter)) return delimiter
  }
}
