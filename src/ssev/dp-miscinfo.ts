import { GatewayError } from '../errors/index.ts';

/**
 * The `Dp-Miscinfo` identity header of the government ESB (protocols.md §4.2):
 *
 *   dn:/C=BG/ST=OID:<client OID>/L=BG/CN=<client CN>|representedPersonID:<id>|correspondentOID:<oid>|operatorID:<ЕГН>
 *
 * SSEV's EsbAuthHandler reads `ST=OID:`, `CN=`, and the digits of representedPersonID and operatorID. Every part
 * is written, empty when not used, with a colon after each name (the public examples show `operatorID:` even
 * when empty). Values are checked so that no "|" or "/" can shift the parts.
 */
export interface DpMiscinfoParts {
  readonly clientOid: string;
  readonly clientCn: string;
  readonly representedPersonId?: string;
  readonly correspondentOid?: string;
  readonly operatorId?: string;
}

const OID = /^[0-2](\.\d{1,9}){1,30}$/;
const CN = /^[\x20-\x7e]{1,200}$/;

export function buildDpMiscinfo(parts: DpMiscinfoParts): string {
  if (!OID.test(parts.clientOid)) invalid('clientOid must be an OID such as 2.16.100.1.1.1.1.13');
  if (!CN.test(parts.clientCn) || /[|/]/.test(parts.clientCn)) invalid('clientCn must be printable ASCII without "|" or "/"');
  const represented = parts.representedPersonId ?? '';
  if (!/^\d{0,20}$/.test(represented)) invalid('representedPersonId must be digits');
  const correspondent = parts.correspondentOid ?? '';
  if (correspondent !== '' && !OID.test(correspondent)) invalid('correspondentOid must be an OID');
  const operator = parts.operatorId ?? '';
  if (!/^\d{0,20}$/.test(operator)) invalid('operatorId must be digits (an ЕГН)');
  return `dn:/C=BG/ST=OID:${parts.clientOid}/L=BG/CN=${parts.clientCn}` +
    `|representedPersonID:${represented}|correspondentOID:${correspondent}|operatorID:${operator}`;
}

/** The parts SSEV's EsbAuthHandler extracts, for the simulator and tests; undefined when the header does not parse. */
export function parseDpMiscinfo(header: string): DpMiscinfoParts | undefined {
  const m = /^dn:(\/[^|]*)\|representedPersonID:(\d*)\|correspondentOID:([0-9.]*)\|operatorID:(\d*)$/.exec(header);
  if (!m) return undefined;
  const dn = m[1];
  const oid = /\/ST=OID:([0-9.]+)(?:\/|$)/.exec(dn)?.[1];
  const cn = /\/CN=([^/]+)$/.exec(dn)?.[1];
  if (!oid || !cn) return undefined;
  return {
    clientOid: oid, clientCn: cn,
    ...(m[2] ? { representedPersonId: m[2] } : {}),
    ...(m[3] ? { correspondentOid: m[3] } : {}),
    ...(m[4] ? { operatorId: m[4] } : {}),
  };
}

function invalid(detail: string): never {
  throw new GatewayError('GW_ERR_CONFIG_INVALID', `$.ssev.rest.identity: ${detail}`);
}
