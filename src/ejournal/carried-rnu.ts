import { GatewayError, isGatewayError } from '../errors/index.ts';
import type { AdditionalData, ServiceItem } from '../seos/model.ts';
import { descendantsAndSelf, elementText, parseXml, type XmlElement } from '../xml/index.ts';
import { validateRnu } from './rnu.ts';

/**
 * The RNU a SEOS document carries on the wire. Pure functions: no database, no log.
 *
 * SEOS has no field for it (protocols.md §1.4), so the gateway uses the two places the schema leaves open
 * (decided here; the RNU standard is not public):
 * - DocAddData (anyType): an element whose local name is `RNU` in any letter case and any namespace, anywhere in
 *   the content, with text only. What we send is `<RNU xmlns="urn:seos-gateway:ejournal:1">…</RNU>`; other
 *   systems' spellings (`<rnu>`, `<x:Rnu xmlns:x="…">`) are read too.
 * - DocService/ServiceCode: normally the service's code in the administrative register (used as the event's
 *   service code); a ServiceCode written `RNU:<value>` (or `РНУ:<value>`) carries the RNU instead.
 * DocAddData wins when both carry one. An RNU that is there but invalid is reported as a problem (the reason and
 * where, never the value) and not taken: the document is received all the same.
 *
 * Note: the reference implementation drops DocAddData when it deserializes (protocols.md §1.9); a document that
 * passed through it keeps only what DocService says.
 */
export const RNU_ADDITIONAL_DATA_NS = 'urn:seos-gateway:ejournal:1';

export interface CarriedRnu {
  readonly rnu: string | null;
  readonly from: 'DocAddData' | 'DocService' | null;
  /** DocService/ServiceCode when it is a service code (not an RNU). */
  readonly serviceCode: string | null;
  /** An RNU was there but could not be taken (invalid, or two different ones): why, never the value. */
  readonly problem: string | null;
}

const RNU_PREFIX = /^(?:RNU|РНУ):/i;
const XML_SPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;
const MAX_ADDITIONAL_DATA_BYTES = 16 * 1024 * 1024;

export function rnuCarriedBy(document: { readonly additionalData?: AdditionalData; readonly service?: ServiceItem }): CarriedRnu {
  const fromService = serviceRnu(document.service);
  const fromData = additionalDataRnu(document.additionalData);
  const serviceCode = fromService.kind === 'code' ? fromService.code : null;
  if (fromData.kind === 'rnu') return { rnu: fromData.rnu, from: 'DocAddData', serviceCode, problem: null };
  if (fromService.kind === 'rnu') return { rnu: fromService.rnu, from: 'DocService', serviceCode, problem: fromData.kind === 'problem' ? fromData.problem : null };
  const problem = fromData.kind === 'problem' ? fromData.problem : fromService.kind === 'problem' ? fromService.problem : null;
  return { rnu: null, from: null, serviceCode, problem };
}

type Found = { kind: 'none' } | { kind: 'rnu'; rnu: string } | { kind: 'problem'; problem: string };

function additionalDataRnu(data: AdditionalData | undefined): Found {
  if (!data || typeof data.xml !== 'string' || !/rnu/i.test(data.xml)) return { kind: 'none' };
  let root: XmlElement;
  try {
    root = parseXml(`<DocAddData>${data.xml}</DocAddData>`, { maxBytes: MAX_ADDITIONAL_DATA_BYTES }).root;
  } catch {
    return { kind: 'none' }; // not our concern here: the message parser decided DocAddData is acceptable
  }
  const values = new Set<string>();
  for (const el of descendantsAndSelf(root)) {
    if (el === root || el.local.toLowerCase() !== 'rnu') continue;
    if (el.children.some((c) => c.type === 'element')) continue; // a structure named RNU is not a number
    const text = elementText(el).replace(XML_SPACE, '');
    try {
      values.add(validateRnu(text, 'DocAddData/RNU'));
    } catch (error) {
      if (!isGatewayError(error)) throw error;
      return { kind: 'problem', problem: error.detail ?? 'DocAddData/RNU: invalid' };
    }
  }
  if (values.size > 1) return { kind: 'problem', problem: 'DocAddData: several different RNUs' };
  const [rnu] = values;
  return rnu === undefined ? { kind: 'none' } : { kind: 'rnu', rnu };
}

function serviceRnu(service: ServiceItem | undefined): Found | { kind: 'code'; code: string } {
  const code = service?.code;
  if (typeof code !== 'string' || code.trim() === '') return { kind: 'none' };
  if (!RNU_PREFIX.test(code)) {
    const trimmed = code.replace(XML_SPACE, '');
    return trimmed.length <= 64 ? { kind: 'code', code: trimmed } : { kind: 'none' };
  }
  try {
    return { kind: 'rnu', rnu: validateRnu(code.slice(4), 'DocService/ServiceCode') };
  } catch (error) {
    if (!isGatewayError(error)) throw error;
    return { kind: 'problem', problem: error.detail ?? 'DocService/ServiceCode: invalid RNU' };
  }
}

/**
 * DocAddData for a document we send with an RNU: the given content (if any) with our RNU element after it.
 * Unchanged when it already carries that RNU; GW_ERR_EJOURNAL_RNU_CONFLICT when it carries another one.
 */
export function additionalDataWithRnu(existing: AdditionalData | undefined, rnuInput: string): AdditionalData {
  const rnu = validateRnu(rnuInput);
  if (existing) {
    const carried = additionalDataRnu(existing);
    if (carried.kind === 'rnu' && carried.rnu === rnu) return existing;
    if (carried.kind !== 'none') throw new GatewayError('GW_ERR_EJOURNAL_RNU_CONFLICT', 'DocAddData already carries another RNU');
  }
  const element = `<RNU xmlns="${RNU_ADDITIONAL_DATA_NS}">${escapeText(rnu)}</RNU>`;
  return { xml: `${existing?.xml ?? ''}${element}` };
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A document to send, with its RNU (if it has one) validated and written into its DocAddData, so that the
 * receiving administration's gateway reports the service's stages under the same RNU.
 */
export function withRnuOnTheWire<T extends { readonly rnu?: string; readonly document: { readonly additionalData?: AdditionalData } }>(input: T): T {
  if (input.rnu === undefined) return input;
  const rnu = validateRnu(input.rnu);
  return { ...input, rnu, document: { ...input.document, additionalData: additionalDataWithRnu(input.document.additionalData, rnu) } };
}
