/** A failure with a stable code, the HTTP status it maps to and a short reason for the access log. */
export class GatehouseError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatehouseError';
    this.code = code;
    this.status = status;
  }
}

/** An invalid configuration: every bad field with its path, e.g. `services[0].url: invalid URL`. */
export class ConfigError extends Error {
  readonly code = 'GH_CONFIG_INVALID';
  readonly errors: string[];
  constructor(errors: string[]) {
    super(`invalid configuration:\n  ${errors.join('\n  ')}`);
    this.name = 'ConfigError';
    this.errors = errors;
  }
}
