import { GatewayError, isGatewayError, type ErrorCode } from '../errors/index.ts';
import type { SsevAddress, SsevProfile, SsevSubjectKind } from './types.ts';

/**
 * Which channel an outgoing document takes (the routing rule), decided before anything is queued:
 *
 *   1. SEOS, when the recipient is an active SEOS participant with a usable endpoint (by GUID or ЕИК);
 *   2. otherwise SSEV, when the recipient has an SSEV profile (administration or legal entity by ЕИК, person by
 *      ЕГН/ЛНЧ — a person is never a SEOS participant, so an ЕГН goes straight to SSEV);
 *   3. otherwise a coded error (GW_ERR_SSEV_NO_CHANNEL), and nothing is queued.
 *
 * The records system may force a channel; then only that channel is tried and its own error is returned. The
 * decision comes with a reason in Bulgarian and English, which the caller stores on the document
 * (documents.channel_reason, as `reasonJson`). Reasons never contain the recipient's identifier or name.
 */
export interface RoutingRecipient {
  /** ЕИК/БУЛСТАТ (9 or 13 digits): an administration or a company. */
  readonly eik?: string;
  /** ЕГН/ЛНЧ (10 digits): a person. */
  readonly egn?: string;
  /** SEOS GUID of an administration. */
  readonly guid?: string;
}

export interface RoutingRequest {
  readonly recipient: RoutingRecipient;
  readonly force?: 'seos' | 'ssev';
}

export interface SeosCandidate {
  readonly guid: string;
  readonly eik: string;
  readonly name: string;
}

export interface RoutingLookups {
  /**
   * An active SEOS participant with a usable endpoint, by GUID or ЕИК; undefined, or a GW_ERR_PARTICIPANT_* error
   * (ParticipantDirectory.requireActiveEndpoint throws those), when there is none.
   */
  readonly seosLookup: (guidOrEik: string) => SeosCandidate | undefined | Promise<SeosCandidate | undefined>;
  /** The SSEV profile that can receive, or null (SsevChannel.lookupProfile). SSEV errors propagate. */
  readonly ssevLookup: (address: SsevAddress) => Promise<SsevProfile | null>;
}

export interface ChannelReason {
  readonly code: 'forced-seos' | 'forced-ssev' | 'seos-participant' | 'ssev-person' | 'ssev-not-in-seos';
  readonly bg: string;
  readonly en: string;
}

export type RoutingDecision =
  | { readonly channel: 'seos'; readonly reason: ChannelReason; readonly seos: SeosCandidate }
  | { readonly channel: 'ssev'; readonly reason: ChannelReason; readonly ssev: SsevProfile };

const GUID = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;
const EIK = /^\d{9}(\d{4})?$/;
const EGN = /^\d{10}$/;

const KIND_BG: Record<SsevSubjectKind, string> = { person: 'физическо лице', 'legal-entity': 'юридическо лице', institution: 'администрация' };
const KIND_EN: Record<SsevSubjectKind, string> = { person: 'a person', 'legal-entity': 'a legal entity', institution: 'an administration' };

const SEOS_WHY: Partial<Record<ErrorCode, { bg: string; en: string }>> = {
  GW_ERR_PARTICIPANT_NOT_FOUND: { bg: 'не е участник в СЕОС', en: 'is not a SEOS participant' },
  GW_ERR_PARTICIPANT_INACTIVE: { bg: 'не е активен участник в СЕОС', en: 'is not an active SEOS participant' },
  GW_ERR_PARTICIPANT_NO_ENDPOINT: { bg: 'няма използваем адрес в СЕОС', en: 'has no usable SEOS endpoint' },
};

export async function chooseChannel(request: RoutingRequest, lookups: RoutingLookups): Promise<RoutingDecision> {
  const r = checkRecipient(request.recipient);
  const force = request.force;
  if (force !== undefined && force !== 'seos' && force !== 'ssev') throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'force must be "seos" or "ssev"');

  if (force === 'seos') {
    const key = r.guid ?? r.eik;
    if (!key) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'SEOS reaches administrations only: give a GUID or an ЕИК');
    const found = await lookups.seosLookup(key);
    if (!found) throw new GatewayError('GW_ERR_PARTICIPANT_NOT_FOUND', r.guid ? `GUID ${r.guid}` : 'by ЕИК');
    return { channel: 'seos', seos: found, reason: { code: 'forced-seos', bg: 'Каналът СЕОС е избран от деловодната система.', en: 'The records system chose SEOS.' } };
  }

  if (force === 'ssev') {
    const identifier = r.egn ?? r.eik;
    if (!identifier) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'SSEV addresses by ЕГН/ЛНЧ or ЕИК/БУЛСТАТ, not by SEOS GUID');
    const profile = await lookups.ssevLookup({ identifier, ...(r.egn ? { kind: 'person' as const } : {}) });
    if (!profile) throw new GatewayError('GW_ERR_SSEV_NO_PROFILE', r.egn ? 'person' : 'by ЕИК');
    return { channel: 'ssev', ssev: profile, reason: { code: 'forced-ssev', bg: `Каналът ССЕВ е избран от деловодната система (${KIND_BG[profile.kind]}).`, en: `The records system chose SSEV (${KIND_EN[profile.kind]}).` } };
  }

  let seosWhy = { bg: 'не е участник в СЕОС', en: 'is not a SEOS participant' };
  if (r.egn) {
    seosWhy = { bg: 'е физическо лице (СЕОС свързва само администрации)', en: 'is a person (SEOS connects administrations only)' };
  } else {
    try {
      const found = await lookups.seosLookup((r.guid ?? r.eik)!);
      if (found) {
        return { channel: 'seos', seos: found, reason: { code: 'seos-participant', bg: 'Получателят е активен участник в СЕОС с използваем адрес.', en: 'The recipient is an active SEOS participant with a usable endpoint.' } };
      }
    } catch (error) {
      if (!isGatewayError(error) || !SEOS_WHY[error.code]) throw error;
      seosWhy = SEOS_WHY[error.code]!;
    }
  }

  const identifier = r.egn ?? r.eik;
  if (identifier) {
    const profile = await lookups.ssevLookup({ identifier, ...(r.egn ? { kind: 'person' as const } : {}) });
    if (profile) {
      return {
        channel: 'ssev', ssev: profile,
        reason: {
          code: r.egn ? 'ssev-person' : 'ssev-not-in-seos',
          bg: `Получателят ${seosWhy.bg}; има профил в ССЕВ (${KIND_BG[profile.kind]}).`,
          en: `The recipient ${seosWhy.en}; it has an SSEV profile (${KIND_EN[profile.kind]}).`,
        },
      };
    }
  }
  throw new GatewayError('GW_ERR_SSEV_NO_CHANNEL', `the recipient ${seosWhy.en}${identifier ? ' and has no SSEV profile' : ' and no ЕИК/ЕГН was given to look up SSEV'}`);
}

/** The form stored in documents.channel_reason. */
export function reasonJson(reason: ChannelReason): string {
  return JSON.stringify({ code: reason.code, bg: reason.bg, en: reason.en });
}

function checkRecipient(recipient: RoutingRecipient | undefined): RoutingRecipient {
  if (!recipient || typeof recipient !== 'object') throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'no recipient');
  const eik = clean(recipient.eik);
  const egn = clean(recipient.egn);
  const guid = clean(recipient.guid);
  if (!eik && !egn && !guid) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'give an ЕИК, an ЕГН or a SEOS GUID');
  if (eik !== undefined && !EIK.test(eik)) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'the ЕИК/БУЛСТАТ must be 9 or 13 digits');
  if (egn !== undefined && !EGN.test(egn)) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'the ЕГН/ЛНЧ must be 10 digits');
  if (guid !== undefined && !GUID.test(guid)) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'the GUID is not a GUID');
  if (egn && (eik || guid)) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'a person (ЕГН) and an organisation (ЕИК/GUID) at once: name one recipient');
  return {
    ...(eik ? { eik } : {}), ...(egn ? { egn } : {}),
    ...(guid ? { guid: `{${guid.replace(/[{}]/g, '').toLowerCase()}}` } : {}),
  };
}

function clean(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'identifiers are strings');
  const t = value.trim();
  return t === '' ? undefined : t;
}
