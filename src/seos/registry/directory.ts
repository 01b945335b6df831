import type { Db } from '../../store/index.ts';
import { GatewayError } from '../../errors/index.ts';
import { normalizeSerial } from '../../pki/index.ts';
import { dateTimeToInstant } from '../values.ts';
import { isRegistryGuid } from './rpc-encoded.ts';
import { canonicalGuid, selectEndpoint } from './select-endpoint.ts';
import type { ParticipantStatus, RegistryEntity, RegistryService } from './types.ts';

/**
 * The gateway's copy of the SEOS registry (table `participants`), merged with the participants named in the
 * configuration file (source 'static'). One row per GUID (lowercase, braced). A static entry wins over the
 * registry for its GUID, field by field: what it names (ЕИК, name, and optionally serial, endpoint, status)
 * replaces the registry's value, the rest (contact, services, parent, LastChange) still comes from the registry.
 * The registry's own version of an overridden row is kept in `registry_state` under `registry_copy:<guid>`, so
 * that dropping the static entry later restores it without waiting for a full sync.
 *
 * Writes are single transactions: a sync either lands completely or leaves the previous copy as it was.
 */
export interface Participant {
  /** Lowercase, braced. */
  guid: string;
  /** ЕИК/БУЛСТАТ. */
  eik: string;
  name: string;
  parentGuid?: string;
  /** As the registry (or the configuration) gives it. */
  certificateSN?: string;
  /** Uppercase hex, no separators or leading zeros (normalizeSerial); absent when there is none or it is not hex. */
  certificateSerialNormalized?: string;
  status: ParticipantStatus;
  /** Chosen by the protocol's service-selection rules (or set in the configuration). */
  endpointUrl?: string;
  phone?: string;
  email?: string;
  services: RegistryService[];
  /** The registry's LastChange for this entity (xsd:dateTime as given). */
  lastChange?: string;
  source: 'registry' | 'static';
  /** When this row was last written (ISO-8601 UTC). */
  syncedAt: string;
}

/** A participant from the configuration file. */
export interface StaticParticipant {
  guid: string;
  eik: string;
  name: string;
  certificateSN?: string;
  endpointUrl?: string;
  /** Default: the registry's status for the same GUID, or Active. */
  status?: 'Active' | 'Inactive';
}

export interface ApplyRegistryOptions {
  /** A full answer (GetAllRecords): registry participants missing from it become Inactive. */
  full: boolean;
  /** The moment of the sync; default now. */
  at?: Date;
  /** The answer's LastChange; default the latest LastChange among the entities. */
  lastChange?: string;
}

export interface ApplyRegistryResult {
  received: number;
  inserted: number;
  updated: number;
  /** Participants marked Inactive because a full answer no longer lists them. */
  inactivated: number;
}

export interface LastSync {
  /** The registry's LastChange from the last sync: the `since` of the next GetNewRecords. */
  lastChange?: string;
  lastIncrementalAt?: string;
  lastFullAt?: string;
}

interface Row {
  guid: string;
  eik: string;
  name: string;
  parent_guid: string | null;
  certificate_sn: string | null;
  certificate_sn_norm: string | null;
  status: ParticipantStatus;
  endpoint_url: string | null;
  phone: string | null;
  email: string | null;
  services_json: string;
  last_change: string | null;
  source: 'registry' | 'static';
  synced_at: string;
}

const KEY_LAST_CHANGE = 'last_change';
const KEY_LAST_FULL = 'last_full_at';
const KEY_LAST_INCREMENTAL = 'last_incremental_at';
const KEY_STATIC = 'static_participants';
const COPY_PREFIX = 'registry_copy:';

/** SQL function for case-insensitive search: SQLite's own LIKE/lower() fold only ASCII. */
const CASEFOLD_FN = 'seos_registry_casefold';

export function foldForSearch(value: string): string {
  return value.normalize('NFC').toLocaleLowerCase('bg').replace(/\s+/g, ' ').trim();
}

function safeSerial(value: string | null | undefined): string | null {
  if (!value || value.trim() === '') return null;
  try {
    return normalizeSerial(value);
  } catch {
    return null;
  }
}

function toParticipant(r: Row): Participant {
  const p: Participant = {
    guid: r.guid, eik: r.eik, name: r.name, status: r.status,
    services: JSON.parse(r.services_json) as RegistryService[], source: r.source, syncedAt: r.synced_at,
  };
  if (r.parent_guid !== null) p.parentGuid = r.parent_guid;
  if (r.certificate_sn !== null) p.certificateSN = r.certificate_sn;
  if (r.certificate_sn_norm !== null) p.certificateSerialNormalized = r.certificate_sn_norm;
  if (r.endpoint_url !== null) p.endpointUrl = r.endpoint_url;
  if (r.phone !== null) p.phone = r.phone;
  if (r.email !== null) p.email = r.email;
  if (r.last_change !== null) p.lastChange = r.last_change;
  return p;
}

function registryRow(e: RegistryEntity, syncedAt: string): Row {
  if (typeof e.guid !== 'string' || !isRegistryGuid(e.guid)) {
    throw new GatewayError('GW_ERR_REGISTRY_BAD_RESPONSE', `entity Guid "${String(e.guid).slice(0, 60)}" is not a GUID`);
  }
  const selected = selectEndpoint(e);
  const parent = e.parentGuid && isRegistryGuid(e.parentGuid) ? canonicalGuid(e.parentGuid) : null;
  return {
    guid: canonicalGuid(e.guid),
    eik: e.entityIdentifier.trim(),
    name: e.administrativeBodyName,
    parent_guid: parent,
    certificate_sn: e.certificateSN?.trim() || null,
    certificate_sn_norm: safeSerial(e.certificateSN),
    status: selected.status,
    endpoint_url: selected.endpointUrl ?? null,
    phone: e.contact?.phone ?? null,
    email: e.contact?.emailAddress ?? null,
    services_json: JSON.stringify(e.services ?? []),
    last_change: e.lastChange ?? null,
    source: 'registry',
    synced_at: syncedAt,
  };
}

function mergeStatic(base: Row | undefined, s: StaticParticipant, at: string): Row {
  return {
    guid: s.guid,
    eik: s.eik,
    name: s.name,
    parent_guid: base?.parent_guid ?? null,
    certificate_sn: s.certificateSN ?? base?.certificate_sn ?? null,
    certificate_sn_norm: s.certificateSN !== undefined ? safeSerial(s.certificateSN) : base?.certificate_sn_norm ?? null,
    status: s.status ?? base?.status ?? 'Active',
    endpoint_url: s.endpointUrl ?? base?.endpoint_url ?? null,
    phone: base?.phone ?? null,
    email: base?.email ?? null,
    services_json: base?.services_json ?? '[]',
    last_change: base?.last_change ?? null,
    source: 'static',
    synced_at: base?.synced_at ?? at,
  };
}

function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  try {
    return dateTimeToInstant(b).getTime() > dateTimeToInstant(a).getTime() ? b : a;
  } catch {
    return b;
  }
}

function invalidStatic(i: number, field: string, why: string): never {
  throw new GatewayError('GW_ERR_CONFIG_INVALID', `$.registry.participants[${i}].${field}: ${why}`);
}

function validateStatic(list: readonly StaticParticipant[]): StaticParticipant[] {
  const seen = new Set<string>();
  return list.map((s, i) => {
    if (typeof s.guid !== 'string' || !isRegistryGuid(s.guid)) invalidStatic(i, 'guid', 'expected a GUID such as {7060efa8-f1fa-4938-8b2b-12a78c86988f}');
    const guid = canonicalGuid(s.guid);
    if (seen.has(guid)) invalidStatic(i, 'guid', `${guid} is listed twice`);
    seen.add(guid);
    if (typeof s.eik !== 'string' || !/^\d{9}(\d{4})?$/.test(s.eik.trim())) invalidStatic(i, 'eik', 'expected an ЕИК/БУЛСТАТ of 9 or 13 digits');
    if (typeof s.name !== 'string' || s.name.trim() === '') invalidStatic(i, 'name', 'must not be empty');
    const out: StaticParticipant = { guid, eik: s.eik.trim(), name: s.name.trim() };
    if (s.certificateSN !== undefined) {
      if (safeSerial(s.certificateSN) === null) invalidStatic(i, 'certificateSN', 'expected a hexadecimal serial number');
      out.certificateSN = s.certificateSN.trim();
    }
    if (s.endpointUrl !== undefined) {
      if (!usableUrl(s.endpointUrl)) invalidStatic(i, 'endpointUrl', 'expected an http(s) URL');
      out.endpointUrl = s.endpointUrl.trim();
    }
    if (s.status !== undefined) {
      if (s.status !== 'Active' && s.status !== 'Inactive') invalidStatic(i, 'status', 'expected Active or Inactive');
      out.status = s.status;
    }
    return out;
  });
}

function usableUrl(value: string): boolean {
  try {
    const u = new URL(value.trim());
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

function prepareStatements(db: Db) {
  return {
    get: db.prepare('SELECT * FROM participants WHERE guid = ?'),
    byEik: db.prepare('SELECT * FROM participants WHERE eik = ? ORDER BY name, guid'),
    bySerial: db.prepare('SELECT * FROM participants WHERE certificate_sn_norm = ? ORDER BY name, guid'),
    search: db.prepare(`SELECT * FROM participants WHERE instr(${CASEFOLD_FN}(name), ?) > 0 ORDER BY name, guid LIMIT ?`),
    upsert: db.prepare(`
      INSERT INTO participants (guid, eik, name, parent_guid, certificate_sn, certificate_sn_norm, status, endpoint_url,
        phone, email, services_json, last_change, source, synced_at)
      VALUES (@guid, @eik, @name, @parent_guid, @certificate_sn, @certificate_sn_norm, @status, @endpoint_url,
        @phone, @email, @services_json, @last_change, @source, @synced_at)
      ON CONFLICT (guid) DO UPDATE SET eik = excluded.eik, name = excluded.name, parent_guid = excluded.parent_guid,
        certificate_sn = excluded.certificate_sn, certificate_sn_norm = excluded.certificate_sn_norm,
        status = excluded.status, endpoint_url = excluded.endpoint_url, phone = excluded.phone, email = excluded.email,
        services_json = excluded.services_json, last_change = excluded.last_change, source = excluded.source,
        synced_at = excluded.synced_at`),
    remove: db.prepare('DELETE FROM participants WHERE guid = ?'),
    count: db.prepare('SELECT count(*) AS n FROM participants WHERE source = ?'),
    activeRegistryGuids: db.prepare("SELECT guid FROM participants WHERE source = 'registry' AND status != 'Inactive'"),
    inactivate: db.prepare("UPDATE participants SET status = 'Inactive', synced_at = ? WHERE guid = ?"),
    getState: db.prepare('SELECT value FROM registry_state WHERE key = ?'),
    setState: db.prepare('INSERT INTO registry_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    deleteState: db.prepare('DELETE FROM registry_state WHERE key = ?'),
    copies: db.prepare('SELECT key, value FROM registry_state WHERE key >= ? AND key < ?'),
  };
}

export class ParticipantDirectory {
  private readonly stmt: ReturnType<typeof prepareStatements>;

  constructor(private readonly db: Db) {
    db.function(CASEFOLD_FN, { deterministic: true }, (value: unknown) => (typeof value === 'string' ? foldForSearch(value) : null));
    this.stmt = prepareStatements(db);
  }

  /**
   * Stores a registry answer. `full`: the answer is the whole registry, so registry participants it does not list
   * become Inactive (as the reference does); they are never deleted, a message may still refer to them.
   */
  applyRegistry(entities: readonly RegistryEntity[], options: ApplyRegistryOptions): ApplyRegistryResult {
    const at = (options.at ?? new Date()).toISOString();
    const rows = entities.map((e) => registryRow(e, at)); // validate everything before writing anything
    const answerLastChange = options.lastChange ?? entities.reduce<string | undefined>((max, e) => laterOf(max, e.lastChange), undefined);
    const result: ApplyRegistryResult = { received: entities.length, inserted: 0, updated: 0, inactivated: 0 };

    this.db.transaction(() => {
      const statics = new Map(this.staticSet().map((s) => [s.guid, s]));
      const seen = new Set<string>();
      for (const row of rows) {
        seen.add(row.guid);
        const existed = this.stmt.get.get(row.guid) !== undefined;
        const s = statics.get(row.guid);
        if (s) {
          this.stmt.setState.run(COPY_PREFIX + row.guid, JSON.stringify(row));
          this.stmt.upsert.run(mergeStatic(row, s, at));
        } else {
          this.stmt.upsert.run(row);
        }
        if (existed) result.updated++;
        else result.inserted++;
      }
      if (options.full) {
        for (const { guid } of this.stmt.activeRegistryGuids.all() as Array<{ guid: string }>) {
          if (seen.has(guid)) continue;
          this.stmt.inactivate.run(at, guid);
          result.inactivated++;
        }
        for (const [guid, copy] of this.registryCopies()) {
          if (seen.has(guid) || copy.status === 'Inactive') continue;
          const inactive: Row = { ...copy, status: 'Inactive', synced_at: at };
          this.stmt.setState.run(COPY_PREFIX + guid, JSON.stringify(inactive));
          const s = statics.get(guid);
          if (s) this.stmt.upsert.run(mergeStatic(inactive, s, at));
          result.inactivated++;
        }
      }
      const stored = this.state(KEY_LAST_CHANGE);
      const next = options.full ? answerLastChange ?? stored : laterOf(stored, answerLastChange);
      if (next !== undefined) this.stmt.setState.run(KEY_LAST_CHANGE, next);
      this.stmt.setState.run(options.full ? KEY_LAST_FULL : KEY_LAST_INCREMENTAL, at);
    })();
    return result;
  }

  /**
   * Replaces the participants from the configuration file. A GUID dropped from the list goes back to the
   * registry's version of it (or disappears when the registry never listed it).
   */
  setStatic(participants: readonly StaticParticipant[], options: { at?: Date } = {}): void {
    const at = (options.at ?? new Date()).toISOString();
    const next = validateStatic(participants);
    this.db.transaction(() => {
      const nextGuids = new Set(next.map((s) => s.guid));
      const copies = this.registryCopies();
      for (const old of this.staticSet()) {
        if (nextGuids.has(old.guid)) continue;
        const copy = copies.get(old.guid);
        if (copy) {
          this.stmt.upsert.run(copy);
          this.stmt.deleteState.run(COPY_PREFIX + old.guid);
        } else {
          this.stmt.remove.run(old.guid);
        }
      }
      for (const s of next) {
        let base = copies.get(s.guid);
        if (!base) {
          const existing = this.stmt.get.get(s.guid) as Row | undefined;
          if (existing && existing.source === 'registry') {
            base = existing;
            this.stmt.setState.run(COPY_PREFIX + s.guid, JSON.stringify(existing));
          }
        }
        this.stmt.upsert.run(mergeStatic(base, s, at));
      }
      this.stmt.setState.run(KEY_STATIC, JSON.stringify(next));
    })();
  }

  /** By GUID in any case, with or without braces. */
  byGuid(guid: string): Participant | undefined {
    if (typeof guid !== 'string' || !isRegistryGuid(guid)) return undefined;
    const row = this.stmt.get.get(canonicalGuid(guid)) as Row | undefined;
    return row ? toParticipant(row) : undefined;
  }

  /** Every participant with this ЕИК/БУЛСТАТ (an administration may have several GUIDs). */
  byEik(eik: string): Participant[] {
    return (this.stmt.byEik.all(String(eik).trim()) as Row[]).map(toParticipant);
  }

  /** Case-insensitive substring of the name (Cyrillic included), ordered by name. */
  search(text: string, options: { limit?: number } = {}): Participant[] {
    const limit = Math.max(1, Math.min(options.limit ?? 100, 10_000));
    return (this.stmt.search.all(foldForSearch(String(text)), limit) as Row[]).map(toParticipant);
  }

  /** By certificate serial in any notation (case, ":" or space separators, leading zeros); [] when not hex. */
  byCertificateSerial(serial: string): Participant[] {
    const norm = safeSerial(serial);
    return norm === null ? [] : (this.stmt.bySerial.all(norm) as Row[]).map(toParticipant);
  }

  /**
   * Where to deliver to a participant named by GUID or ЕИК. Throws GW_ERR_PARTICIPANT_NOT_FOUND (unknown, or an ЕИК
   * shared by several active participants: then name it by GUID), GW_ERR_PARTICIPANT_INACTIVE (Inactive or
   * TemporarilyInactive) or GW_ERR_PARTICIPANT_NO_ENDPOINT (no usable http(s) URI).
   */
  requireActiveEndpoint(guidOrEik: string): { participant: Participant; endpointUrl: string } {
    const key = String(guidOrEik).trim();
    const byGuid = isRegistryGuid(key);
    const found = byGuid ? [this.byGuid(key)].filter((p): p is Participant => p !== undefined) : this.byEik(key);
    const label = byGuid ? `GUID ${canonicalGuid(key)}` : `ЕИК ${key.slice(0, 20)}`;
    if (found.length === 0) throw new GatewayError('GW_ERR_PARTICIPANT_NOT_FOUND', label);
    const active = found.filter((p) => p.status === 'Active');
    if (active.length === 0) {
      throw new GatewayError('GW_ERR_PARTICIPANT_INACTIVE', `${label}: ${found.map((p) => `${p.guid} is ${p.status}`).join(', ')}`);
    }
    const usable = active.filter((p) => p.endpointUrl !== undefined && usableUrl(p.endpointUrl));
    if (usable.length === 0) {
      throw new GatewayError('GW_ERR_PARTICIPANT_NO_ENDPOINT', `${label}: ${active.map((p) => p.guid).join(', ')}`);
    }
    if (usable.length > 1) {
      throw new GatewayError('GW_ERR_PARTICIPANT_NOT_FOUND',
        `${label} is shared by ${usable.length} active participants (${usable.map((p) => p.guid).join(', ')}); address one by GUID`);
    }
    return { participant: usable[0], endpointUrl: usable[0].endpointUrl!.trim() };
  }

  lastSync(): LastSync {
    const out: LastSync = {};
    const lastChange = this.state(KEY_LAST_CHANGE);
    const lastIncrementalAt = this.state(KEY_LAST_INCREMENTAL);
    const lastFullAt = this.state(KEY_LAST_FULL);
    if (lastChange !== undefined) out.lastChange = lastChange;
    if (lastIncrementalAt !== undefined) out.lastIncrementalAt = lastIncrementalAt;
    if (lastFullAt !== undefined) out.lastFullAt = lastFullAt;
    return out;
  }

  /** How many participants came from the registry or from the configuration. */
  count(source: 'registry' | 'static'): number {
    return (this.stmt.count.get(source) as { n: number }).n;
  }

  /** The static participants currently configured (normalized). */
  staticParticipants(): StaticParticipant[] {
    return this.staticSet();
  }

  private state(key: string): string | undefined {
    return (this.stmt.getState.get(key) as { value: string } | undefined)?.value;
  }

  private staticSet(): StaticParticipant[] {
    const raw = this.state(KEY_STATIC);
    return raw ? (JSON.parse(raw) as StaticParticipant[]) : [];
  }

  private registryCopies(): Map<string, Row> {
    // Keys sort as text: every "registry_copy:{...}" key lies in [prefix, prefix + U+FFFF).
    const rows = this.stmt.copies.all(COPY_PREFIX, `${COPY_PREFIX}\uffff`) as Array<{ key: string; value: string }>;
    return new Map(rows.map((r) => [r.key.slice(COPY_PREFIX.length), JSON.parse(r.value) as Row]));
  }
}
