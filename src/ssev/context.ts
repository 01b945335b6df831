import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { DeliveryLogCounterparty, DeliveryLogEntry } from '../audit/index.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import type { DocumentRow } from '../store/documents.ts';
import type { SsevLimits } from './limits.ts';
import type { SsevApi, SsevSubjectKind } from './types.ts';

/**
 * What the parts of the SSEV channel (sending, status polling, inbox) share: their dependencies, as the
 * composition root hands them over, and a few helpers. Not part of the public surface.
 */
export interface SsevLogger {
  info(o: object, m?: string): void;
  warn(o: object, m?: string): void;
  error(o: object, m?: string): void;
}

export interface SsevSpoolStore {
  putBuffer(bytes: Buffer): { sha256: string; size: number };
  putStream(source: Readable, options?: { maxBytes?: number }): Promise<{ sha256: string; size: number }>;
  read(sha256: string): Buffer;
  has(sha256: string): boolean;
}

export interface SsevChannelDeps {
  readonly db: Db;
  /** The SSEV API the configuration chose (createSsevRestClient or createSsevSoapClient). */
  readonly client: SsevApi;
  /** The attachment spool (ContentStore). */
  readonly spool: SsevSpoolStore;
  /** The hash-chained delivery log (DeliveryLog). */
  readonly log: { append(entry: DeliveryLogEntry): unknown };
  /** The evidence archive (ContentStore): SSEV's delivery answers are kept here when given. */
  readonly archive?: { putBuffer(bytes: Buffer): { sha256: string; size: number } };
  /** Hands a committed outbox row to the delivery engine (after the commit). */
  readonly schedule: (entry: OutboxRow) => void;
  readonly limits?: Partial<SsevLimits>;
  readonly logger?: SsevLogger;
  /** Sent messages are asked about delivery this often (default 15 min). */
  readonly statusPollIntervalMs?: number;
  /** After this long without delivery the status poller stops asking (default 90 days). */
  readonly statusPollMaxAgeMs?: number;
  /** Inbox polling (default 5 min). */
  readonly pollIntervalMs?: number;
  /** A claim by a process that stopped answering is taken over after this long (default 10 min). */
  readonly claimLeaseMs?: number;
  /** A received message that fails this many times is set aside as refused (default 10). */
  readonly maxTakeAttempts?: number;
  /** Recipient lookups are cached this long (default 1 day). */
  readonly profileCacheMs?: number;
  /** Prefix of the receipt numbers given to received messages (default "SSEV-"). */
  readonly receiptPrefix?: string;
  /**
   * The gateway's Lifecycle (src/app/lifecycle.ts), told INSIDE the transaction of each change, so that the
   * webhook and eJournal rows its listeners add commit with the change or not at all: documentReceived for a
   * received message, statusChanged for SENT / DELIVERED / SENT_FAILED, deliveryFailed for a refused or dead send.
   */
  readonly lifecycle?: SsevLifecycle;
  /** After a sent document is delivered (the recipient opened it): webhooks, eJournal DELIVERED when it has an RNU. */
  readonly onDelivered?: (document: DocumentRow) => void;
  /** After a received message became an inbound document. */
  readonly onReceived?: (document: DocumentRow) => void;
  /** After any other status change of an SSEV document (SENT, SENT_FAILED). */
  readonly onStatusChanged?: (document: DocumentRow) => void;
}

/** What the channel tells the gateway's Lifecycle (a structural subset of it, so this folder does not import app/). */
export interface SsevLifecycle {
  documentReceived(document: DocumentRow): void;
  statusChanged(document: DocumentRow, previous: string, source: string): void;
  deliveryFailed(entry: OutboxRow, code: string, detail?: string): void;
}

export const OUTBOX_KIND = 'ssev-message';
/** One destination for the engine's health tracking: SSEV itself (recipients are not separate hosts). */
export const SSEV_DESTINATION = 'ssev';

export const noLogger: SsevLogger = { info() {}, warn() {}, error() {} };

/**
 * The counterparty as the delivery log may show it. Administrations are public (ЕИК and name); people and
 * companies are not written there at all (a sole trader's name is a person's name): only the pseudonymous key.
 */
export function logCounterparty(key: string, kind: SsevSubjectKind | undefined, identifier: string, name: string): DeliveryLogCounterparty {
  return kind === 'institution' ? { guid: key, eik: identifier || undefined, name: name || undefined } : { guid: key };
}

/**
 * The documents.counterparty_guid of an SSEV recipient: stable per recipient, and for people and companies
 * not their identifier in clear (the column reaches logs and dashboards more easily than counterparty_eik).
 */
export function recipientKey(kind: SsevSubjectKind, identifier: string): string {
  if (kind === 'institution') return `ssev:institution:${identifier}`;
  return `ssev:${kind}:${createHash('sha256').update(`${kind}:${identifier}`).digest('hex').slice(0, 24)}`;
}

export function errorText(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && typeof (error as { code: unknown }).code === 'string') {
    const e = error as { code: string; detail?: string };
    return e.detail ? `${e.code}: ${e.detail}`.slice(0, 500) : e.code;
  }
  return error instanceof Error ? error.name : 'unknown error';
}

/** After the transaction that made the change has committed (never from inside it). */
export function afterCommit(fn: () => void): void {
  setImmediate(fn);
}
