export {
  DSIG_NS, ENVELOPED_SIGNATURE, C14N_10, SIGNATURE_PROFILES,
  type HashName, type SignatureProfile, type SignatureProfileName,
} from './algorithms.ts';
export { canonicalizeDocument, canonicalizeSubtree, canonicalizeContent, canonicalSubtreeString, escapeCanonicalText, escapeCanonicalAttribute, type C14nSink } from './c14n.ts';
export { buildEnvelopedSignature, buildEnvelopedSignatureAsync, signXmlDocument, type EnvelopedSignatureInput, type KeyInfoStyle, type SignDocumentOptions } from './sign.ts';
export { verifyEnvelopedSignature, verifyEnvelopedSignatureWith, type VerifiedSignature, type VerifySignatureOptions } from './verify.ts';
