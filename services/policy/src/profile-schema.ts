import { ENGINES, LANGUAGES } from '@cordon/contracts'
import { z } from 'zod'
import { MAX_GLOB_SEGMENTS } from './globs.ts'
import { LimitsInputSchema, QUOTA_CEILINGS } from './limits.ts'

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/
export const NameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must be 1-63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit')

export const TOOL_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/
export const ToolNameSchema = z
  .string()
  .regex(TOOL_NAME_PATTERN, 'must be an identifier of at most 64 characters')

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export type HttpMethod = (typeof HTTP_METHODS)[number]
export const SCHEMES = ['https', 'http'] as const
export type Scheme = (typeof SCHEMES)[number]
/** The port a URL of each scheme uses when it names none. */
export const DEFAULT_PORTS: Readonly<Record<Scheme, number>> = { https: 443, http: 80 }
export const ACCESS_LEVELS = ['none', 'read', 'read-write'] as const
export type Access = (typeof ACCESS_LEVELS)[number]
/**
 * Which virtual filesystem an execution sees: its own, dropped when it ends (`execution`, the
 * default), or the agent's, kept between executions (`agent`). `agent` is the wider of the two.
 */
export const FILESYSTEM_SCOPES = ['execution', 'agent'] as const
export type FilesystemScope = (typeof FILESYSTEM_SCOPES)[number]

/** The only root of the virtual filesystem guests see. */
export const FILESYSTEM_ROOT = '/workspace'

const MAX_RULES = 64

const uniqueList = <T extends z.ZodType<string | number>>(item: T, max: number, what: string) =>
  z
    .array(item)
    .max(max, `must list at most ${max} ${what}s`)
    .refine((list) => new Set(list).size === list.length, `lists a ${what} twice`)

const nonEmptyUniqueList = <T extends string>(values: readonly [T, ...T[]], what: string) =>
  uniqueList(z.enum(values), values.length, what).refine((list) => list.length > 0, {
    message: `must allow at least one ${what}`,
  })

/** `*`, `*.domain` or a hostname / IP literal; checked and made canonical when the profile resolves. */
export const HostPatternSchema = z.string().min(1).max(256)
const PathGlobSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^\//, 'must start with "/"')
  .refine(
    (glob) => glob.split('/').length <= MAX_GLOB_SEGMENTS,
    `must have at most ${MAX_GLOB_SEGMENTS} segments`,
  )
const KeyGlobSchema = z.string().min(1).max(256)
const PortSchema = z.number().int().min(1).max(65_535)
const quota = (ceiling: number) => z.number().int().min(0).max(ceiling, `must be at most ${ceiling} bytes`)

/** An egress allow rule. Omitted fields narrow: https only, its default port, GET and HEAD, any path. */
export const AllowRuleSchema = z.strictObject({
  host: HostPatternSchema,
  schemes: uniqueList(z.enum(SCHEMES), SCHEMES.length, 'scheme').optional(),
  ports: uniqueList(PortSchema, 16, 'port').optional(),
  methods: uniqueList(z.enum(HTTP_METHODS), HTTP_METHODS.length, 'method').optional(),
  paths: uniqueList(PathGlobSchema, 32, 'path').optional(),
})

/** An egress deny rule. Omitted fields widen the denial: every port, method and path of the host. */
export const DenyRuleSchema = z.strictObject({
  host: HostPatternSchema,
  ports: uniqueList(PortSchema, 16, 'port').optional(),
  methods: uniqueList(z.enum(HTTP_METHODS), HTTP_METHODS.length, 'method').optional(),
  paths: uniqueList(PathGlobSchema, 32, 'path').optional(),
})

/** Path globs across all network rules of one profile, so that deciding stays cheap. */
export const MAX_NETWORK_PATHS = 128
/** Characters of path globs across all network rules of one profile. */
export const MAX_NETWORK_PATH_CHARS = 4096

const pathCount = (rules: readonly { paths?: readonly string[] | undefined }[] | undefined) =>
  (rules ?? []).reduce((sum, rule) => sum + (rule.paths?.length ?? 0), 0)
const pathChars = (rules: readonly { paths?: readonly string[] | undefined }[] | undefined) =>
  (rules ?? []).reduce((sum, rule) => sum + (rule.paths ?? []).reduce((n, p) => n + p.length, 0), 0)

export const NetworkSchema = z
  .strictObject({
    allow: z.array(AllowRuleSchema).max(MAX_RULES).optional(),
    deny: z.array(DenyRuleSchema).max(MAX_RULES).optional(),
    allowPrivateAddresses: z.boolean().optional(),
  })
  .refine(
    (network) => pathCount(network.allow) + pathCount(network.deny) <= MAX_NETWORK_PATHS,
    `the rules may list at most ${MAX_NETWORK_PATHS} path globs in all`,
  )
  .refine(
    (network) => pathChars(network.allow) + pathChars(network.deny) <= MAX_NETWORK_PATH_CHARS,
    `the rules' path globs may hold at most ${MAX_NETWORK_PATH_CHARS} characters in all`,
  )

/** Environment-variable style (`GITHUB_TOKEN`): never the name of an `Object.prototype` member. */
export const SECRET_NAME_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/
export const SecretSchema = z.strictObject({
  from: z
    .string()
    .max(140)
    .regex(/^(env|store):[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, 'must be "env:NAME" or "store:NAME"'),
  hosts: uniqueList(HostPatternSchema, 32, 'host').refine((hosts) => hosts.length > 0, 'must list a host'),
  /** Whether the value may also be put into the URL query (default false: request headers only). */
  query: z.boolean().optional(),
})
export const SecretsSchema = z
  .record(
    z
      .string()
      .regex(SECRET_NAME_PATTERN, 'must be 1-64 characters of A-Z, 0-9 and "_", starting with a letter'),
    SecretSchema,
  )
  .refine((secrets) => Object.keys(secrets).length <= 32, 'must declare at most 32 secrets')

export const FilesystemSchema = z.strictObject({
  root: z.literal(FILESYSTEM_ROOT).optional(),
  access: z.enum(ACCESS_LEVELS).optional(),
  scope: z.enum(FILESYSTEM_SCOPES).optional(),
  quotaBytes: quota(QUOTA_CEILINGS.filesystemBytes).optional(),
  paths: uniqueList(PathGlobSchema, 32, 'path').optional(),
  deny: uniqueList(PathGlobSchema, 32, 'path').optional(),
})

export const KvSchema = z.strictObject({
  access: z.enum(ACCESS_LEVELS).optional(),
  quotaBytes: quota(QUOTA_CEILINGS.kvBytes).optional(),
  keys: uniqueList(KeyGlobSchema, 32, 'key pattern').optional(),
  deny: uniqueList(KeyGlobSchema, 32, 'key pattern').optional(),
})

/**
 * A sandbox profile as written (YAML or JSON). Unknown keys are errors everywhere: a misspelt or
 * not-yet-supported section must never be silently ignored, because ignoring a restriction widens.
 * Sections left out are inherited from `extends`; a profile without `extends` must state `engines`,
 * `languages` and the five core limits, and every capability it leaves out is denied.
 */
export const ProfileSchema = z.strictObject({
  name: NameSchema,
  description: z.string().max(1000).optional(),
  extends: NameSchema.optional(),
  engines: nonEmptyUniqueList(ENGINES, 'engine').optional(),
  languages: nonEmptyUniqueList(LANGUAGES, 'language').optional(),
  limits: LimitsInputSchema.optional(),
  network: NetworkSchema.optional(),
  secrets: SecretsSchema.optional(),
  filesystem: FilesystemSchema.optional(),
  kv: KvSchema.optional(),
  /** Tools guest code may call: names of the agent's declared tools, or `*` for every declared tool. */
  tools: uniqueList(z.union([ToolNameSchema, z.literal('*')]), 64, 'tool').optional(),
})

export type ProfileInput = z.infer<typeof ProfileSchema>
export type AllowRuleInput = z.infer<typeof AllowRuleSchema>
export type DenyRuleInput = z.infer<typeof DenyRuleSchema>
