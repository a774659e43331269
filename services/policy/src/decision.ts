/**
 * A policy decision is data: what was decided, a stable code, and `rule`, a pointer into the resolved
 * profile at the entry that decided it (`profiles/web-reader#/network/allow/0`). A denial also says why
 * in words. Allow decisions may carry a checked value that only this package can mint.
 */
export type Decision<Code extends string = string, Extra = object> =
  | ({ effect: 'allow'; code: 'ALLOWED'; rule: string } & Extra)
  | { effect: 'deny'; code: Code; rule: string; message: string }

export type Denial<Code extends string> = Extract<Decision<Code>, { effect: 'deny' }>

export function deny<Code extends string>(code: Code, rule: string, message: string): Denial<Code> {
  return { effect: 'deny', code, rule, message }
}
