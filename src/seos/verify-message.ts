import { GatewayError } from '../errors/index.ts';
import { DSIG_NS } from '../xmldsig/algorithms.ts';
import type { HashName } from '../xmldsig/algorithms.ts';
import { verifyEnvelopedSignature, verifyEnvelopedSignatureWith, type VerifiedSignature, type VerifySignatureOptions } from '../xmldsig/verify.ts';
import { parseXml, type XmlLimits } from '../xml/parse.ts';
import { childElements, descendantsAndSelf, type XmlDocument, type XmlElement } from '../xml/tree.ts';
import { SEOS_NS, type SeosMessage } from './model.ts';
import { parseMessageDocument } from './parse.ts';

export interface VerifyMessageOptions extends VerifySignatureOptions {
  readonly limits?: Partial<XmlLimits>;
}

export interface VerifiedMessage {
  readonly message: SeosMessage;
  readonly signature: VerifiedSignature;
  readonly document: XmlDocument;
}

/**
 * Verifies a signed SEOS message and returns the model parsed from the very tree that was verified.
 *
 * The placement rules are ours and deliberately strict, because .NET peers verify the *first* Signature in the
 * document: the root must be a SEOS Message (a Message found deeper means a wrapping attempt), there must be
 * exactly one Signature anywhere, and it must be the last child element of Message. With Reference URI="" the
 * signed node-set is then the whole message, so the element we act on is the element that was signed.
 */
export function verifySignedMessage(xml: Buffer | string, options: VerifyMessageOptions = {}): VerifiedMessage {
  const document = parseXml(xml, options.limits);
  const signature = verifyMessageSignature(document, options);
  return { message: parseMessageDocument(document), signature, document };
}

/**
 * The signature half of verifySignedMessage, for a receiver that has already parsed (and schema-checked) the
 * same tree: its model and this verification then speak of the very same nodes.
 */
export function verifyMessageSignature(document: XmlDocument, options: VerifySignatureOptions = {}): VerifiedSignature {
  return verifyEnvelopedSignature(document, messageSignature(document), options);
}

/**
 * verifyMessageSignature for a skeleton of a message held in a file (src/xml/skeleton.ts): the same placement
 * policy and checks, the digest computed by `digestOf` over the canonical form without the Signature.
 */
export function verifyMessageSignatureWith(
  document: XmlDocument,
  digestOf: (hash: HashName, exclude: XmlElement) => Promise<Buffer>,
  options: VerifySignatureOptions = {},
): Promise<VerifiedSignature> {
  const signature = messageSignature(document);
  return verifyEnvelopedSignatureWith(signature, (hash) => digestOf(hash, signature), options);
}

/** The one Signature of a SEOS Message, where our policy allows it (the last child of the root Message). */
function messageSignature(document: XmlDocument): XmlElement {
  const root = document.root;
  const signatures: XmlElement[] = [];
  let nestedMessage: XmlElement | undefined;
  for (const el of descendantsAndSelf(root)) {
    if (el.ns === DSIG_NS && el.local === 'Signature') signatures.push(el);
    else if (el !== root && el.ns === SEOS_NS && el.local === 'Message') nestedMessage ??= el;
  }
  if (root.ns !== SEOS_NS || root.local !== 'Message') {
    if (nestedMessage) throw new GatewayError('GW_ERR_SIG_WRAPPED', `a Message inside <${root.qname.slice(0, 60)}> at ${nestedMessage.path.slice(0, 200)}`);
    throw new GatewayError('GW_ERR_SEOS_NOT_A_MESSAGE', `the root is {${root.ns.slice(0, 100)}}${root.local.slice(0, 60)}`);
  }
  if (nestedMessage) throw new GatewayError('GW_ERR_SIG_WRAPPED', `a second Message at ${nestedMessage.path.slice(0, 200)}`);
  if (signatures.length === 0) throw new GatewayError('GW_ERR_SIG_MISSING');
  if (signatures.length > 1) {
    throw new GatewayError('GW_ERR_SIG_EXTRA_SIGNATURE', signatures.map((s) => s.path.slice(0, 120)).join(', '));
  }
  const signature = signatures[0];
  const children = childElements(root);
  if (signature.parent !== root || children[children.length - 1] !== signature) {
    throw new GatewayError('GW_ERR_SIG_MISPLACED', `found at ${signature.path.slice(0, 200)}`);
  }
  return signature;
}
