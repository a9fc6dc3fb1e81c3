/** Where a role listens: `host:port` text and its parsed form. */

/** host:port of a listening role. */
export interface Endpoint {
  host: string;
  port: number;
}

/** Parse "host:port" (or ":port", or "port"; the host defaults to 127.0.0.1). */
export function parseEndpoint(text: string, what: string): Endpoint {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} must look like host:port, got '${text}'`);
  return { host: m[1] || '127.0.0.1', port };
}
