import type { VerifiedSignature, VerifySignatureOptions } from '../xmldsig/verify.ts';
import { parseXmlFile, type SkeletonDocument } from '../xml/skeleton.ts';
import type { XmlLimits } from '../xml/parse.ts';
import type { XmlElement } from '../xml/tree.ts';
import { attachmentBytes } from './build.ts';
import { SEOS_NS, type AttachmentContent, type SeosMessage } from './model.ts';
import { parseMessageDocument } from './parse.ts';
import { verifyMessageSignatureWith } from './verify-message.ts';

/**
 * A SEOS message held in a file (a large inbound message), parsed and verified with bounded memory: its attachment
 * bodies stay in the file and the rest is an ordinary tree (see src/xml/skeleton.ts). The checks are those of the
 * in-memory path: the same parser, schema walk, placement policy and signature verification, over the same bytes.
 */
export type MessageSkeleton = SkeletonDocument;

/** The one place a large base64 run may stay in the file: Message/Body/DocumentRegistrationRequest/Document/DocAttachmentList/Attachment/AttBody. */
const ATTACHMENT_BODY_PATH = ['AttBody', 'Attachment', 'DocAttachmentList', 'Document', 'DocumentRegistrationRequest', 'Body', 'Message'];

export function isAttachmentBody(el: XmlElement): boolean {
  let cur: XmlElement | null = el;
  for (const local of ATTACHMENT_BODY_PATH) {
    if (!cur || cur.ns !== SEOS_NS || cur.local !== local) return false;
    cur = cur.parent;
  }
  return cur === null;
}

/** Safe parse of a message file (DOCTYPE, entities, size, depth, attributes refused as parseXml does). */
export function parseMessageFile(file: string, limits?: Partial<XmlLimits>, minRunBytes?: number): Promise<MessageSkeleton> {
  return parseXmlFile(file, { limits, minRunBytes, parentLocalNames: ['AttBody'], accept: isAttachmentBody });
}

/** verifyMessageSignature for a message file: the digest streams the attachment bodies from the file. */
export function verifySkeletonSignature(skeleton: MessageSkeleton, options: VerifySignatureOptions = {}): Promise<VerifiedSignature> {
  return verifyMessageSignatureWith(skeleton.document, (hash, exclude) => skeleton.canonicalDigest(hash, exclude), options);
}

/** verifySignedMessage for a file: the model parsed from the very skeleton that was verified. */
export async function verifySignedMessageFile(
  file: string,
  options: VerifySignatureOptions & { readonly limits?: Partial<XmlLimits>; readonly minRunBytes?: number } = {},
): Promise<{ message: SeosMessage; signature: VerifiedSignature; skeleton: MessageSkeleton }> {
  const skeleton = await parseMessageFile(file, options.limits, options.minRunBytes);
  const signature = await verifySkeletonSignature(skeleton, options);
  return { message: parseMessageDocument(skeleton.document), signature, skeleton };
}

/**
 * The decoded bytes of an attachment of a message parsed from a skeleton: from the file when its body is a
 * placeholder, from the model otherwise (small bodies stay in the skeleton). A slice may be a view of a reused
 * buffer: consume it (hash, write, copy) before asking for the next.
 */
export async function* skeletonAttachmentBytes(skeleton: MessageSkeleton, content: AttachmentContent): AsyncGenerator<Buffer> {
  const run = content.source === 'base64' ? skeleton.runForPlaceholder(content.text) : undefined;
  if (run) yield* skeleton.decodeRun(run);
  else yield* attachmentBytes(content);
}
