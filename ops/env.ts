/** Imported first by the CLI: its logs default to warnings only (the service's LOG_LEVEL still wins when set). */
process.env.LOG_LEVEL ??= 'warn';
export {};
