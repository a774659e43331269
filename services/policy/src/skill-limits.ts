const KiB = 1024

/** Most bytes of one skill resource file, and of all of an agent's skill files together. */
export const SKILL_FILE_MAX_BYTES = 256 * KiB
export const SKILL_FILES_MAX_BYTES = 1024 * KiB
/** Most resource files per skill. */
export const SKILL_MAX_FILES = 64
