import type { ExecutionRecord } from '@cordon/contracts'
import { describe, expect, it } from 'vitest'
import { EventLog, type ExecutionEvent, ExecutionStreams, RESUMED_ID_BASE } from './execution-events.ts'

const record = (id: string, stdout = ''): ExecutionRecord => ({
  id,
  agent: 'a',
  engine: 'quickjs',
  language: 'javascript',
  status: 'ok',
  result: null,
  stdout,
  stderr: '',
  error: null,
  usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
  createdAt: '2026-01-01T00:00:00.000Z',
  finishedAt: null,
})

describe('EventLog', () => {
  it('numbers a resumed run from 1 000 000 x its attempt, so that an id from before the crash asks for all of it', () => {
    const log = new EventLog(2)
    log.started(record('ex1'))
    log.chunk('stdout', 'again\n')
    const seen: ExecutionEvent[] = []
    log.attach(57, (event) => seen.push(event))
    expect(seen.map((event) => [event.id, event.event])).toEqual([
      [2 * RESUMED_ID_BASE + 1, 'started'],
      [2 * RESUMED_ID_BASE + 2, 'stdout'],
    ])
    expect(seen[0]?.data).toMatchObject({ id: 'ex1', resumed: 2 })
    expect(log.lastId).toBe(2 * RESUMED_ID_BASE + 2)
  })

  it('sends a listener what follows and stops at the end', () => {
    const log = new EventLog()
    log.started(record('ex2'))
    const seen: string[] = []
    log.attach(1, (event) => seen.push(event.event))
    log.chunk('stderr', 'warn')
    log.end(record('ex2'))
    log.chunk('stdout', 'late')
    expect(seen).toEqual(['stderr', 'end'])
    expect(log.listeners).toBe(0)
  })
})

describe('ExecutionStreams', () => {
  it('keeps ended streams a client watched within 64 MiB of output, dropping the oldest first', () => {
    const streams = new ExecutionStreams()
    const big = 'x'.repeat(12 * 1024 * 1024)
    for (const id of ['a', 'b', 'c', 'd']) {
      const log = streams.open('t', record(id))
      log.attach(0, () => {})
      log.chunk('stdout', big)
      streams.end('t', record(id, big))
    }
    // Each counts 24 MiB (chunks and record): only the newest two fit.
    expect(['a', 'b', 'c', 'd'].map((id) => streams.get('t', id) !== undefined)).toEqual([
      false,
      false,
      true,
      true,
    ])
  })

  it('does not keep an ended stream nobody watched, and keeps tenants apart', () => {
    const streams = new ExecutionStreams()
    streams.open('t', record('quiet'))
    streams.end('t', record('quiet'))
    expect(streams.get('t', 'quiet')).toBeUndefined()
    streams.open('t', record('live'))
    expect(streams.get('other', 'live')).toBeUndefined()
  })
})
