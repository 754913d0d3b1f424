/**
 * Errors are values with a code and a location (after the `yaml` package's YAMLError). Parsers collect them;
 * where a function cannot continue it throws an InputError carrying the same value, which the CLI prints as
 * `file:line:column: message` (or `file: byte offset N, block B: message` for captures) and exits with code 2.
 */

export interface SourceLocation {
  /** File name as the user gave it (or "<stdin>"). */
  readonly file?: string;
  /** 1-based line and column, for text inputs. */
  readonly line?: number;
  readonly column?: number;
  /** Byte offset, for binary inputs. */
  readonly offset?: number;
  /** Block or record description for binary inputs ("EPB #3", "record 17"). */
  readonly block?: string;
}

export interface Diagnostic extends SourceLocation {
  /** Stable machine-readable code, e.g. "TEXT_EXPECTED_FLAGS", "PCAP_TRUNCATED". */
  readonly code: string;
  readonly message: string;
  /** The offending source line, for a caret excerpt. */
  readonly excerpt?: string;
}

export class InputError extends Error {
  readonly diagnostic: Diagnostic;
  constructor(diagnostic: Diagnostic) {
    super(formatDiagnostic(diagnostic));
    this.name = "InputError";
    this.diagnostic = diagnostic;
  }
}

export function formatLocation(d: SourceLocation): string {
  const file = d.file ?? "<input>";
  if (d.line !== undefined) return `${file}:${d.line}${d.column !== undefined ? `:${d.column}` : ""}`;
  if (d.offset !== undefined) return `${file}: byte offset ${d.offset}${d.block ? `, ${d.block}` : ""}`;
  return file;
}

/** One-line message, plus the excerpt with a caret under the column when there is one. */
export function formatDiagnostic(d: Diagnostic): string {
  let out = `${formatLocation(d)}: ${d.message} [${d.code}]`;
  if (d.excerpt !== undefined) {
    out += `\n  ${d.excerpt}`;
    if (d.column !== undefined) out += `\n  ${" ".repeat(Math.max(0, d.column - 1))}^`;
  }
  return out;
}
