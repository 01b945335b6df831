import { GatewayError } from '../errors/index.ts';
import { C14N_10 } from './c14n.ts';

/** Algorithm identifiers of XMLDSig that SEOS peers use, and how Node's crypto names them. */
export const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
export const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
export { C14N_10 };

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/**
 * A signing profile: RSA-SHA256 with SHA-256 digests is our default; RSA-SHA1 with SHA-1 is what the
 * government's .NET 4.6 node emits and is selected per peer for legacy systems.
 */
export type SignatureProfileName = 'rsa-sha256' | 'rsa-sha1';

export interface SignatureProfile {
  readonly name: SignatureProfileName;
  readonly hash: HashName;
  readonly signatureMethod: string;
  readonly digestMethod: string;
}

export const SIGNATURE_PROFILES: Record<SignatureProfileName, SignatureProfile> = {
  'rsa-sha256': {
    name: 'rsa-sha256', hash: 'sha256',
    signatureMethod: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    digestMethod: 'http://www.w3.org/2001/04/xmlenc#sha256',
  },
  'rsa-sha1': {
    name: 'rsa-sha1', hash: 'sha1',
    signatureMethod: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
    digestMethod: 'http://www.w3.org/2000/09/xmldsig#sha1',
  },
};

const DIGEST_METHODS: Record<string, HashName> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};

const SIGNATURE_METHODS: Record<string, HashName> = {
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1': 'sha1',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': 'sha512',
};

export function digestHashFor(uri: string, allowSha1: boolean): HashName {
  const hash = DIGEST_METHODS[uri];
  if (!hash) throw new GatewayError('GW_ERR_SIG_ALGORITHM', `unsupported DigestMethod ${uri.slice(0, 120)}`);
  if (hash === 'sha1' && !allowSha1) throw new GatewayError('GW_ERR_SIG_ALGORITHM', 'SHA-1 digests are not allowed for this peer');
  return hash;
}

export function signatureHashFor(uri: string, allowSha1: boolean): HashName {
  const hash = SIGNATURE_METHODS[uri];
  if (!hash) throw new GatewayError('GW_ERR_SIG_ALGORITHM', `unsupported SignatureMethod ${uri.slice(0, 120)}`);
  if (hash === 'sha1' && !allowSha1) throw new GatewayError('GW_ERR_SIG_ALGORITHM', 'RSA-SHA1 is not allowed for this peer');
  return hash;
}
