import { GatewayError } from '../../errors/index.ts';
import type { RegistryClient } from './client.ts';
import type { ApplyRegistryResult, ParticipantDirectory } from './directory.ts';

/**
 * Keeps the local copy of the registry fresh. The reference asks for the whole registry (GetAllRecords) every
 * 10 minutes; we do the same at start-up and then every `fullEveryMs`, and in between ask only for what changed
 * since the registry's own LastChange (GetNewRecords). Only a full answer can tell us a participant left the
 * registry, which is why a full run still happens daily.
 *
 * A full answer with no entities at all, while we hold registry participants, is taken as a registry fault
 * rather than as "everyone left": applying it would mark every participant Inactive and stop all delivery.
 *
 * Runs never overlap (timer runs are chained, manual runs queue behind a running one). A failing registry
 * leaves the previous copy untouched: the directory writes each answer in one transaction, after the answer was
 * read and parsed completely.
 */
export interface RegistrySyncLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface RegistrySyncOptions {
  client: Pick<RegistryClient, 'getAllRecords' | 'getNewRecords'>;
  directory: ParticipantDirectory;
  /** Pause between runs (default 10 min, the reference's RefreshEntriesIntervalMinutes). */
  intervalMs?: number;
  /** Age of the last full run after which the next run is full again (default 24 h). */
  fullEveryMs?: number;
  logger?: RegistrySyncLogger;
  /** Clock, for tests. */
  now?: () => Date;
}

export interface RegistrySyncResult extends ApplyRegistryResult {
  mode: 'full' | 'incremental';
  /** The `since` of an incremental run. */
  since?: string;
  lastChange?: string;
  /** ISO-8601 UTC start of the run. */
  at: string;
  durationMs: number;
}

export class RegistrySync {
  private readonly client: RegistrySyncOptions['client'];
  private readonly directory: ParticipantDirectory;
  private readonly intervalMs: number;
  private readonly fullEveryMs: number;
  private readonly logger: RegistrySyncLogger | undefined;
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private chain: Promise<unknown> = Promise.resolve();
  private current: Promise<unknown> | undefined;

  constructor(options: RegistrySyncOptions) {
    this.client = options.client;
    this.directory = options.directory;
    this.intervalMs = options.intervalMs ?? 10 * 60_000;
    this.fullEveryMs = options.fullEveryMs ?? 24 * 60 * 60_000;
    this.logger = options.logger;
    this.now = options.now ?? (() => new Date());
    if (!(this.intervalMs > 0) || !(this.fullEveryMs > 0)) throw new RangeError('intervalMs and fullEveryMs must be positive');
  }

  /** One run now (queued behind a run in progress). Full when asked, on the first run, or when the last full one is too old. */
  syncNow(options: { full?: boolean } = {}): Promise<RegistrySyncResult> {
    const run = this.chain.then(() => this.runOnce(options.full ?? false));
    this.chain = run.catch(() => undefined);
    this.current = this.chain;
    return run;
  }

  /** Starts periodic runs: the first one right away, the next `intervalMs` after each run ends. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops scheduling; resolves when a run in progress has finished. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.syncNow().then(
        (r) => this.logger?.info({ registrySync: summary(r) }, 'SEOS registry synchronized'),
        (err: unknown) => this.logger?.warn({ err: errorSummary(err) }, 'SEOS registry sync failed; the previous copy stays in use'),
      ).finally(() => this.schedule(this.intervalMs));
    }, delayMs);
    this.timer.unref();
  }

  private async runOnce(forceFull: boolean): Promise<RegistrySyncResult> {
    const started = this.now();
    const last = this.directory.lastSync();
    const fullDue = !last.lastFullAt || !last.lastChange ||
      started.getTime() - new Date(last.lastFullAt).getTime() >= this.fullEveryMs;
    const full = forceFull || fullDue;
    const t0 = performance.now();
    const answer = full ? await this.client.getAllRecords() : await this.client.getNewRecords(last.lastChange!);
    if (full && answer.entities.length === 0 && this.directory.count('registry') > 0) {
      throw new GatewayError('GW_ERR_REGISTRY_BAD_RESPONSE', 'GetAllRecords returned no entities; the previous copy stays in use');
    }
    const applied = this.directory.applyRegistry(answer.entities, {
      full, at: started, ...(answer.lastChange !== undefined ? { lastChange: answer.lastChange } : {}),
    });
    const result: RegistrySyncResult = {
      mode: full ? 'full' : 'incremental',
      ...applied,
      at: started.toISOString(),
      durationMs: Math.round(performance.now() - t0),
    };
    if (!full) result.since = last.lastChange;
    const lastChange = this.directory.lastSync().lastChange;
    if (lastChange !== undefined) result.lastChange = lastChange;
    return result;
  }
}

function summary(r: RegistrySyncResult): object {
  return { mode: r.mode, received: r.received, inserted: r.inserted, updated: r.updated, inactivated: r.inactivated, durationMs: r.durationMs };
}

function errorSummary(err: unknown): object {
  if (err && typeof err === 'object' && 'code' in err) {
    const e = err as { code: unknown; detail?: unknown; message?: unknown };
    return { code: e.code, detail: e.detail, message: e.message };
  }
  return { message: String(err) };
}
