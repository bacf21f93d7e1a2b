/**
 * HTTP/1.1 message framing for the load balancer's proxy path (RFC 9112), on raw bytes.
 *
 * Design note. The balancer forwards bytes, not objects. It parses a message head once, into
 * the header lines it passes on and the few facts it acts on (method, target, keep-alive, how
 * the body is framed), then passes body bytes through as they come, counting them
 * (Content-Length) or scanning them (chunked) only to find where the message ends.
 *
 * The parsers are strict wherever leniency would let the balancer and a replica disagree on
 * where a message ends (request smuggling): a request with both Content-Length and
 * Transfer-Encoding, with more than one Content-Length, with a Transfer-Encoding that does not
 * end in chunked, with a bare CR or LF, a folded header line, or a character a field may not
 * hold is refused with 400, as is an HTTP/1.1 request without exactly one Host.
 */

import { METHODS } from 'node:http';

/** Largest request head accepted (request line and headers), as node's default. */
export const MAX_REQUEST_HEAD = 16 * 1024;
/** Largest response head accepted from an upstream. */
export const MAX_RESPONSE_HEAD = 64 * 1024;
/** Largest trailer section of a chunked body. */
const MAX_TRAILERS = 16 * 1024;
/** Largest run of extensions on one chunk size line (as node's parser). */
const MAX_EXTENSIONS = 16 * 1024;

/** How a message's body is delimited. */
export const Framing = {
  /** No body. */
  None: 0,
  /** `length` bytes (Content-Length). */
  Length: 1,
  /** Transfer-Encoding ending in chunked: scanned by `ChunkedScanner`. */
  Chunked: 2,
  /** Everything until the connection closes (responses only). */
  UntilClose: 3,
} as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

export interface RequestHead {
  method: string;
  target: string;
  /** The request's HTTP/1.x minor version. */
  minor: number;
  /** Header lines to forward verbatim (`name: value\r\n` each); hop-by-hop and X-Forwarded-* left out. */
  lines: string;
  /** The X-Forwarded-For values the request came with, joined, if any. */
  forwardedFor: string | undefined;
  /** The Forwarded (RFC 7239) values, joined, if any (also left in `lines`). */
  forwarded: string | undefined;
  hasHost: boolean;
  /** The client keeps the connection open after this exchange. */
  keepAlive: boolean;
  framing: Framing;
  /** Body bytes, with `Framing.Length`. */
  length: number;
  /** `Expect: 100-continue`. */
  expectContinue: boolean;
}

export interface ResponseHead {
  status: number;
  /** Status code and reason phrase as the upstream sent them, e.g. `200 OK`. */
  statusText: string;
  /** Header lines to forward verbatim; hop-by-hop (Transfer-Encoding too) left out. */
  lines: string;
  framing: Framing;
  length: number;
  /** The Transfer-Encoding value, with `Framing.Chunked`. */
  transferEncoding: string;
  /** The upstream keeps the connection open after this response. */
  keepAlive: boolean;
  /** The upstream's `Keep-Alive: timeout=N`, in ms, if it sent one. */
  keepAliveHintMs: number | undefined;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// Field values: visible characters, space, tab and obs-text; never CR, LF, NUL or other controls.
const VALUE = '[^\\x00-\\x08\\x0a-\\x1f\\x7f]*';
// Targets: origin-form (/path?query), absolute-form (scheme://...) or *; visible ASCII only.
const REQUEST_LINE = new RegExp(`(${TOKEN}) (/[\\x21-\\x7e]*|[A-Za-z][A-Za-z0-9+.-]*://[\\x21-\\x7e]+|\\*) HTTP/1\\.([01])\\r\\n`, 'y');
/** The methods node's parser (the replicas') knows; any other is refused here rather than there. */
const KNOWN_METHODS = new Set(METHODS);
const STATUS_LINE = new RegExp(`HTTP/1\\.([01]) ([1-9]\\d\\d)(?: ${VALUE})?\\r\\n`, 'y');
const HEADER_LINE = new RegExp(`(${TOKEN}):[\\t ]*(${VALUE})\\r\\n`, 'y');
const CONTENT_LENGTH = /^\d{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout=(\d{1,6})/i;

/** Headers a Connection header may not take away: the message's framing, its Host, and itself. */
const NOT_CONNECTION_OPTIONS = new Set(['connection', 'content-length', 'transfer-encoding', 'host']);

/** Headers that concern one connection only (RFC 9110 7.6.1), never forwarded as they are. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The value with trailing spaces and tabs removed (the pattern took the leading ones). */
function trimEnd(value: string): string {
  let end = value.length;
  while (end > 0 && (value.charCodeAt(end - 1) === 32 || value.charCodeAt(end - 1) === 9)) end--;
  return end === value.length ? value : value.slice(0, end);
}

/** The items of a comma-separated header value (Connection, Transfer-Encoding), lower-cased. */
function tokenList(value: string): string[] {
  // The usual single token (`keep-alive`, `close`, `chunked`) without the split's arrays.
  if (!value.includes(',')) {
    const token = value.trim().toLowerCase();
    return token === '' ? [] : [token];
  }
  return value.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== '');
}

/** The last transfer coding of a Transfer-Encoding value is chunked. */
function endsChunked(value: string): boolean {
  const codings = tokenList(value);
  return codings.length > 0 && codings[codings.length - 1] === 'chunked';
}

/**
 * Parse a request head: `head` is the latin1 text from the request line through the empty line
 * that ends the headers. Returns the reason it is refused (for a 400) when it is not valid.
 */
export function parseRequestHead(head: string): RequestHead | string {
  REQUEST_LINE.lastIndex = 0;
  const line = REQUEST_LINE.exec(head);
  if (line === null) return 'the request line is not "METHOD target HTTP/1.x" (target: /path, scheme://host/path or *)';
  if (!KNOWN_METHODS.has(line[1]!)) return `the method ${line[1]} is not known`;
  const minor = line[3] === '1' ? 1 : 0;
  const first = parseRequestFields(head, REQUEST_LINE.lastIndex, null);
  if (typeof first === 'string') return first;
  // Headers the Connection header names are hop-by-hop too: rare, so a second pass.
  const fields = first.named.length > 0 ? parseRequestFields(head, REQUEST_LINE.lastIndex, new Set(first.named)) : first;
  if (typeof fields === 'string') return fields;

  const { contentLength, transferEncoding } = fields;
  let framing: Framing = Framing.None;
  let length = 0;
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return 'both Content-Length and Transfer-Encoding';
    if (minor === 0) return 'Transfer-Encoding in an HTTP/1.0 request';
    if (!endsChunked(transferEncoding)) return `Transfer-Encoding "${transferEncoding}" does not end in chunked`;
    framing = Framing.Chunked;
  } else if (contentLength !== undefined) {
    length = Number(contentLength);
    if (length > 0) framing = Framing.Length;
  }
  if (minor === 1 && fields.hosts !== 1) return fields.hosts === 0 ? 'no Host header' : 'more than one Host header';
  if (fields.hosts > 1) return 'more than one Host header';
  return {
    method: line[1]!,
    target: line[2]!,
    minor,
    lines: transferEncoding === undefined ? fields.lines : `${fields.lines}Transfer-Encoding: ${transferEncoding}\r\n`,
    forwardedFor: fields.forwardedFor,
    forwarded: fields.forwarded,
    hasHost: fields.hosts === 1,
    keepAlive: !fields.close && (minor === 1 || fields.keepAlive),
    framing,
    length,
    expectContinue: fields.expectContinue,
  };
}

interface RequestFields {
  lines: string;
  named: string[];
  forwardedFor: string | undefined;
  forwarded: string | undefined;
  hosts: number;
  close: boolean;
  keepAlive: boolean;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  expectContinue: boolean;
}

function parseRequestFields(head: string, start: number, drop: Set<string> | null): RequestFields | string {
  const fields: RequestFields = { lines: '', named: [], forwardedFor: undefined, forwarded: undefined, hosts: 0, close: false, keepAlive: false, contentLength: undefined, transferEncoding: undefined, expectContinue: false };
  const end = head.length - 2;
  let at = start;
  while (at < end) {
    HEADER_LINE.lastIndex = at;
    const m = HEADER_LINE.exec(head);
    if (m === null) return `header line ${JSON.stringify(head.slice(at, head.indexOf('\n', at) >>> 0).slice(0, 80))} is malformed`;
    const lineStart = at;
    at = HEADER_LINE.lastIndex;
    const name = m[1]!.toLowerCase();
    if (drop?.has(name)) continue;
    switch (name) {
      case 'content-length': {
        const value = trimEnd(m[2]!);
        if (fields.contentLength !== undefined) return 'more than one Content-Length';
        if (!CONTENT_LENGTH.test(value)) return `Content-Length "${value}" is not a number of bytes`;
        fields.contentLength = value;
        // Framing headers go on as the balancer read them, so the replica frames the body alike.
        fields.lines += `Content-Length: ${value}\r\n`;
        continue;
      }
      case 'transfer-encoding': {
        const value = trimEnd(m[2]!);
        fields.transferEncoding = fields.transferEncoding === undefined ? value : `${fields.transferEncoding}, ${value}`;
        continue; // forwarded once, joined, below
      }
      case 'host':
        fields.hosts++;
        break;
      case 'connection':
        for (const token of tokenList(m[2]!)) {
          if (token === 'close') fields.close = true;
          else if (token === 'keep-alive') fields.keepAlive = true;
          else if (!NOT_CONNECTION_OPTIONS.has(token)) fields.named.push(token);
        }
        continue;
      case 'expect':
        // Answered here (100 Continue once the request is forwarded); other expectations are ignored.
        if (trimEnd(m[2]!).toLowerCase() === '100-continue') fields.expectContinue = true;
        continue;
      case 'x-forwarded-for': {
        const value = trimEnd(m[2]!);
        fields.forwardedFor = fields.forwardedFor === undefined ? value : `${fields.forwardedFor}, ${value}`;
        continue;
      }
      case 'forwarded': {
        const value = trimEnd(m[2]!);
        fields.forwarded = fields.forwarded === undefined ? value : `${fields.forwarded}, ${value}`;
        break; // read for the client's identity, and forwarded as it came
      }
      case 'x-forwarded-proto':
        continue;
      default:
        if (HOP_BY_HOP.has(name)) continue;
    }
    fields.lines += head.slice(lineStart, at);
  }
  return fields;
}

/**
 * Parse a response head (the latin1 text through the empty line) to a request made with
 * `method`. Returns the reason it is invalid when it is.
 */
export function parseResponseHead(head: string, method: string): ResponseHead | string {
  STATUS_LINE.lastIndex = 0;
  const line = STATUS_LINE.exec(head);
  if (line === null) return 'the status line is not "HTTP/1.x code reason"';
  const status = Number(line[2]);
  const minor = line[1] === '1' ? 1 : 0;
  let lines = '';
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let close = false;
  let keepAlive = false;
  let hint: number | undefined;
  let named: string[] | null = null;
  const end = head.length - 2;
  let at = STATUS_LINE.lastIndex;
  const statusEnd = at - 2;
  while (at < end) {
    HEADER_LINE.lastIndex = at;
    const m = HEADER_LINE.exec(head);
    if (m === null) return 'a header line is malformed';
    const lineStart = at;
    at = HEADER_LINE.lastIndex;
    const name = m[1]!.toLowerCase();
    switch (name) {
      case 'content-length': {
        const value = trimEnd(m[2]!);
        if (!CONTENT_LENGTH.test(value) || (contentLength !== undefined && contentLength !== value)) return `Content-Length "${value}" is invalid`;
        contentLength = value; // forwarded below, unless Transfer-Encoding frames the body
        continue;
      }
      case 'transfer-encoding': {
        const value = trimEnd(m[2]!);
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        continue;
      }
      case 'connection':
        for (const token of tokenList(m[2]!)) {
          if (token === 'close') close = true;
          else if (token === 'keep-alive') keepAlive = true;
          else if (!NOT_CONNECTION_OPTIONS.has(token)) (named ??= []).push(`${token}:`);
        }
        continue;
      case 'keep-alive': {
        const timeout = KEEP_ALIVE_TIMEOUT.exec(m[2]!);
        if (timeout) hint = Number(timeout[1]) * 1000;
        continue;
      }
      default:
        if (HOP_BY_HOP.has(name)) continue;
    }
    lines += head.slice(lineStart, at);
  }
  if (named !== null) {
    // Drop the lines of headers the Connection header names (rare).
    lines = lines.split('\r\n').filter((l) => l !== '' && !named.some((n) => l.toLowerCase().startsWith(n))).map((l) => `${l}\r\n`).join('');
  }

  let framing: Framing;
  let length = 0;
  let reusable = !close && (minor === 1 || keepAlive);
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) {
    framing = Framing.None;
  } else if (transferEncoding !== undefined) {
    framing = endsChunked(transferEncoding) ? Framing.Chunked : Framing.UntilClose;
    // Content-Length beside it is ignored and not passed on (RFC 9112 6.3), and the connection
    // is not trusted again.
    if (contentLength !== undefined || framing === Framing.UntilClose) reusable = false;
    // A coding without chunked: the body runs to the close, still coded, so the client is told.
    if (framing === Framing.UntilClose) lines += `Transfer-Encoding: ${transferEncoding}\r\n`;
  } else if (contentLength !== undefined) {
    length = Number(contentLength);
    framing = length > 0 ? Framing.Length : Framing.None;
  } else {
    framing = Framing.UntilClose;
    reusable = false;
  }
  if (contentLength !== undefined && transferEncoding === undefined) lines += `Content-Length: ${contentLength}\r\n`;
  return {
    status,
    statusText: head.slice(9, statusEnd),
    lines,
    framing,
    length,
    transferEncoding: transferEncoding ?? '',
    keepAlive: reusable,
    keepAliveHintMs: hint,
  };
}

// The chunked scanner's states.
const Chunk = {
  Size: 0, SizeMore: 1, ExtName: 2, ExtNameMore: 3, ExtValue: 4, ExtToken: 5, ExtQuoted: 6, ExtEscape: 7, ExtAfterQuoted: 8, SizeLf: 9,
  Data: 10, DataCr: 11, DataLf: 12, TrailerStart: 13, TrailerName: 14, TrailerValue: 15, TrailerLf: 16, EndLf: 17, Done: 18,
} as const;
type Chunk = (typeof Chunk)[keyof typeof Chunk];

const CR = 13;
const LF = 10;
const TAB = 9;
const SEMICOLON = 59;
const EQUALS = 61;
const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

/** Bytes of a token (RFC 9110 5.6.2). */
const TOKEN_BYTE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN_BYTE[c.charCodeAt(0)] = 1;

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * Finds where a chunked body ends while its bytes pass through unchanged: chunk sizes, their
 * extensions (`;name`, `;name=token`, `;name="quoted"`), CRLFs and trailer fields are checked
 * byte by byte, as strictly as the replicas' parser does; chunk data is skipped in one step.
 */
export class ChunkedScanner {
  private state: Chunk = Chunk.Size;
  private remaining = 0;
  private digits = 0;
  /** Bytes of extensions on this size line, or of the trailer section. */
  private extra = 0;
  /** Why the body is malformed, once it is. */
  error: string | null = null;

  get done(): boolean {
    return this.state === Chunk.Done;
  }

  /**
   * Scan `buf[start, end)`. Returns the index just past the end of the body when it ends in
   * this range, else `end`. `onData`, when given, receives each range of chunk data (to unwrap
   * the body for an HTTP/1.0 client). On a malformed body, sets `error` and returns -1.
   */
  scan(buf: Buffer, start: number, end: number, onData?: (from: number, to: number) => void): number {
    let i = start;
    while (i < end) {
      const byte = buf[i]!;
      switch (this.state) {
        case Chunk.Data: {
          const to = Math.min(end, i + this.remaining);
          onData?.(i, to);
          this.remaining -= to - i;
          i = to;
          if (this.remaining === 0) this.state = Chunk.DataCr;
          continue;
        }
        case Chunk.Size:
        case Chunk.SizeMore: {
          const digit = hexValue(byte);
          if (digit >= 0) {
            if (++this.digits > 12) return this.fail('a chunk size is too large');
            this.remaining = this.remaining * 16 + digit;
            this.state = Chunk.SizeMore;
          } else if (this.state === Chunk.SizeMore && byte === SEMICOLON) {
            this.state = Chunk.ExtName;
          } else if (this.state === Chunk.SizeMore && byte === CR) {
            this.state = Chunk.SizeLf;
          } else {
            return this.fail('a chunk size is not hexadecimal');
          }
          break;
        }
        case Chunk.ExtName:
        case Chunk.ExtNameMore:
        case Chunk.ExtValue:
        case Chunk.ExtToken:
        case Chunk.ExtQuoted:
        case Chunk.ExtEscape:
        case Chunk.ExtAfterQuoted:
          if (++this.extra > MAX_EXTENSIONS) return this.fail('the chunk extensions are too large');
          if (!this.extension(byte)) return this.fail('a chunk extension is malformed');
          break;
        case Chunk.SizeLf:
          if (byte !== LF) return this.fail('a chunk size line does not end in CRLF');
          this.digits = 0;
          this.extra = 0;
          this.state = this.remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
          break;
        case Chunk.DataCr:
          if (byte !== CR) return this.fail('chunk data is longer than its size');
          this.state = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (byte !== LF) return this.fail('chunk data does not end in CRLF');
          this.state = Chunk.Size;
          break;
        case Chunk.TrailerStart:
          if (byte === CR) this.state = Chunk.EndLf;
          else if (TOKEN_BYTE[byte]) this.state = Chunk.TrailerName;
          else return this.fail('a trailer line is not a header field');
          break;
        case Chunk.TrailerName:
          if (byte === COLON) this.state = Chunk.TrailerValue;
          else if (!TOKEN_BYTE[byte]) return this.fail('a trailer line is not a header field');
          break;
        case Chunk.TrailerValue:
          if (byte === CR) this.state = Chunk.TrailerLf;
          else if ((byte < 32 && byte !== TAB) || byte === 127) return this.fail('a trailer value holds a control character');
          break;
        case Chunk.TrailerLf:
          if (byte !== LF) return this.fail('a trailer line does not end in CRLF');
          this.state = Chunk.TrailerStart;
          break;
        case Chunk.EndLf:
          if (byte !== LF) return this.fail('the chunked body does not end in CRLF');
          this.state = Chunk.Done;
          return i + 1;
        case Chunk.Done:
          return i;
      }
      if (this.state >= Chunk.TrailerStart && this.state <= Chunk.TrailerLf && ++this.extra > MAX_TRAILERS) return this.fail('the trailer section is too large');
      i++;
    }
    return end;
  }

  /** One byte of a chunk extension: `;name`, `;name=token` or `;name="quoted"`, repeated, then CR. */
  private extension(byte: number): boolean {
    switch (this.state) {
      case Chunk.ExtName:
        if (!TOKEN_BYTE[byte]) return false;
        this.state = Chunk.ExtNameMore;
        return true;
      case Chunk.ExtNameMore:
      case Chunk.ExtToken:
        if (TOKEN_BYTE[byte]) return true;
        if (byte === SEMICOLON) this.state = Chunk.ExtName;
        else if (byte === CR) this.state = Chunk.SizeLf;
        else if (byte === EQUALS && this.state === Chunk.ExtNameMore) this.state = Chunk.ExtValue;
        else return false;
        return true;
      case Chunk.ExtValue:
        if (byte === QUOTE) this.state = Chunk.ExtQuoted;
        else if (TOKEN_BYTE[byte]) this.state = Chunk.ExtToken;
        else return false;
        return true;
      case Chunk.ExtQuoted:
        if (byte === QUOTE) this.state = Chunk.ExtAfterQuoted;
        else if (byte === BACKSLASH) this.state = Chunk.ExtEscape;
        else if (byte !== TAB && (byte < 32 || byte > 126)) return false;
        return true;
      case Chunk.ExtEscape:
        if (byte !== TAB && (byte < 32 || byte > 126)) return false;
        this.state = Chunk.ExtQuoted;
        return true;
      default: // ExtAfterQuoted
        if (byte === SEMICOLON) this.state = Chunk.ExtName;
        else if (byte === CR) this.state = Chunk.SizeLf;
        else return false;
        return true;
    }
  }

  private fail(reason: string): number {
    this.error = reason;
    return -1;
  }
}
