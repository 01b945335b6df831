/**
 * Bulgarian identifiers as the records system names a recipient: which kind of recipient a string is, and
 * whether a personal number is well formed.
 *
 * A person is addressed by ЕГН or ЛНЧ (10 digits, each with its own check digit); a company or an administration
 * by ЕИК/БУЛСТАТ (9 or 13 digits); an administration also by its SEOS GUID. The check digit of a personal number
 * is verified because a mistyped ЕГН could belong to someone else, and SSEV would deliver a personal document to
 * that person. ЕИК check digits are not verified: the SEOS registry and SSEV's profile lookup are the authority
 * for organisations (and test and demo registries use made-up ЕИКs).
 */
export type RecipientIdentifier =
  | { readonly type: 'egn'; readonly value: string }
  | { readonly type: 'eik'; readonly value: string }
  | { readonly type: 'guid'; readonly value: string };

const GUID = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;

const EGN_WEIGHTS = [2, 4, 8, 5, 10, 9, 7, 3, 6];
const LNCH_WEIGHTS = [21, 19, 17, 13, 11, 9, 7, 3, 1];

/** ЕГН: Σ digit×weight mod 11 (10 counts as 0) is the 10th digit. */
export function isValidEgn(value: string): boolean {
  if (!/^\d{10}$/.test(value)) return false;
  const sum = EGN_WEIGHTS.reduce((n, w, i) => n + w * Number(value[i]), 0);
  return (sum % 11) % 10 === Number(value[9]);
}

/** ЛНЧ (a foreigner's personal number): Σ digit×weight mod 10 is the 10th digit. */
export function isValidLnch(value: string): boolean {
  if (!/^\d{10}$/.test(value)) return false;
  const sum = LNCH_WEIGHTS.reduce((n, w, i) => n + w * Number(value[i]), 0);
  return sum % 10 === Number(value[9]);
}

export function isValidPersonalNumber(value: string): boolean {
  return isValidEgn(value) || isValidLnch(value);
}

/**
 * What kind of identifier `value` is, by its shape; undefined when it is none of them. A 10-digit value is a
 * personal number by shape even when its check digit is wrong (the caller refuses it with its own code).
 */
export function classifyRecipient(value: string): RecipientIdentifier | undefined {
  const v = value.trim();
  if (/^\d{10}$/.test(v)) return { type: 'egn', value: v };
  if (/^\d{9}$|^\d{13}$/.test(v)) return { type: 'eik', value: v };
  if (GUID.test(v)) return { type: 'guid', value: `{${v.replace(/[{}]/g, '').toLowerCase()}}` };
  return undefined;
}
