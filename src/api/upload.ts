import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { MultipartFile, MultipartValue, Multipart } from '@fastify/multipart';
import { GatewayError } from '../errors/index.ts';
import type { ContentStore, StoredContent } from '../store/content-store.ts';
import { statement, type Db } from '../store/database.ts';
import { requireSafeFileName } from './file-names.ts';

/**
 * Multipart uploads (POST /v1/documents/multipart): the `metadata` part (JSON) first, then one `file` part per
 * attachment, each streamed into the content-addressed spool with flat memory and a byte budget. Names are
 * checked before a byte is stored and never touch the file system.
 *
 * A request that fails part-way leaves no file behind: every spool file it wrote that no committed attachment
 * refers to (and no other upload in flight holds) is removed when the request ends.
 */
export class UploadSpool {
  readonly #spool: ContentStore;
  readonly #db: Db;
  readonly #held = new Map<string, number>();

  constructor(spool: ContentStore, db: Db) {
    this.#spool = spool;
    this.#db = db;
  }

  /** Starts one request's uploads; call `end()` when the request has its answer (committed or not). */
  begin(): UploadSession {
    const mine: string[] = [];
    return {
      put: async (source, maxBytes) => {
        const stored = await this.#spool.putStream(source, { maxBytes });
        this.#held.set(stored.sha256, (this.#held.get(stored.sha256) ?? 0) + 1);
        mine.push(stored.sha256);
        return stored;
      },
      path: (sha256) => this.#spool.path(sha256),
      end: () => {
        for (const sha256 of mine.splice(0)) this.#release(sha256);
      },
    };
  }

  #release(sha256: string): void {
    const left = (this.#held.get(sha256) ?? 1) - 1;
    if (left > 0) {
      this.#held.set(sha256, left);
      return;
    }
    this.#held.delete(sha256);
    const used = statement(this.#db, 'SELECT 1 FROM attachments WHERE sha256 = ? LIMIT 1').get(sha256);
    if (used) return;
    try {
      fs.rmSync(this.#spool.path(sha256), { force: true });
    } catch {
      // An unreferenced spool file is harmless; it only takes space.
    }
  }
}

export interface UploadSession {
  put(source: Readable, maxBytes: number): Promise<StoredContent>;
  path(sha256: string): string;
  end(): void;
}

export interface UploadedFile {
  readonly fileName: string;
  readonly mimeType: string;
  readonly comment?: string;
  readonly sha256: string;
  readonly size: number;
}

export interface AttachmentMetadata {
  fileName: string;
  mimeType: string;
  comment?: string;
}

const MIME_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** Reads the first part, which must be the `metadata` field, and returns its JSON text. */
export async function readMetadataPart(parts: AsyncIterator<Multipart>): Promise<string> {
  const first = await parts.next();
  const part = first.done ? undefined : first.value;
  if (!part || part.type !== 'field' || part.fieldname !== 'metadata') {
    if (part?.type === 'file') part.file.resume();
    throw new GatewayError('GW_ERR_API_VALIDATION', 'multipart: the first part must be the field "metadata" (the JSON of SendDocumentMetadata)');
  }
  const value = (part as MultipartValue).value;
  if (typeof value !== 'string') throw new GatewayError('GW_ERR_API_VALIDATION', 'metadata: must be JSON text');
  return value;
}

/**
 * Streams the remaining parts (each a `file`) into the spool. Names and types come from the metadata's
 * `document.attachments[i]` when given (then the counts must match), else from the part's own headers.
 */
export async function spoolFileParts(
  parts: AsyncIterator<Multipart>, session: UploadSession,
  options: { maxUploadBytes: number; maxAttachments: number; described?: readonly AttachmentMetadata[] },
): Promise<UploadedFile[]> {
  const files: UploadedFile[] = [];
  let budget = options.maxUploadBytes;
  for (;;) {
    const next = await parts.next();
    if (next.done) break;
    const part = next.value;
    const index = files.length;
    if (part.type !== 'file' || part.fieldname !== 'file') {
      if (part.type === 'file') part.file.resume();
      throw new GatewayError('GW_ERR_API_VALIDATION', `multipart part ${index + 2}: expected a file part named "file"`);
    }
    if (index >= options.maxAttachments) {
      part.file.resume();
      throw new GatewayError('GW_ERR_API_TOO_LARGE', `more than ${options.maxAttachments} attachments`);
    }
    const described = options.described?.[index];
    const where = described ? `metadata.document.attachments[${index}].fileName` : `file[${index}].filename`;
    const file = part as MultipartFile;
    try {
      const fileName = requireSafeFileName(described?.fileName ?? file.filename ?? '', where);
      const mimeType = described?.mimeType ?? file.mimetype;
      if (!MIME_RE.test(mimeType)) throw new GatewayError('GW_ERR_API_VALIDATION', `file[${index}]: the part's Content-Type must be type/subtype`);
      const stored = await session.put(file.file, budget);
      if (file.file.truncated) throw new GatewayError('GW_ERR_API_TOO_LARGE', `limit ${options.maxUploadBytes} bytes`);
      budget -= stored.size;
      files.push({ fileName, mimeType, ...(described?.comment !== undefined ? { comment: described.comment } : {}), ...stored });
    } catch (error) {
      file.file.resume();
      throw error;
    }
  }
  if (options.described && options.described.length !== files.length) {
    throw new GatewayError('GW_ERR_API_VALIDATION', `metadata.document.attachments: describes ${options.described.length} files, the upload has ${files.length}`);
  }
  return files;
}

/** Reads and discards whatever parts are left (a repeat needs none of them). */
export async function drainParts(parts: AsyncIterator<Multipart>): Promise<void> {
  for (;;) {
    const next = await parts.next();
    if (next.done) return;
    if (next.value.type === 'file') next.value.file.resume();
  }
}
