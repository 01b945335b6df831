import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { SigningIdentity } from '../pki/index.ts';
import { SIGNATURE_PROFILES, type SignatureProfileName } from '../xmldsig/algorithms.ts';
import { buildEnvelopedSignature, buildEnvelopedSignatureAsync, type KeyInfoStyle } from '../xmldsig/sign.ts';
import { MESSAGE_END_TAG, XML_DECLARATION, attachmentBase64, messagePieces } from './build.ts';
import type { AttachmentContent, SeosMessage } from './model.ts';

export interface SignMessageOptions {
  /** rsa-sha256 by default; rsa-sha1 for legacy peers that need it. */
  readonly profile?: SignatureProfileName;
  readonly keyInfo?: KeyInfoStyle;
}

const DECLARATION = Buffer.from(XML_DECLARATION, 'utf8');
const END_TAG = Buffer.from(MESSAGE_END_TAG, 'utf8');

/**
 * Builds and signs a message in memory. What we write is already canonical, so the reference digest is the hash
 * of the bytes from `<Message` to `</Message>` as written, without the Signature; the Signature, being the last
 * child, is appended once that digest is known. No DOM, no second pass.
 */
export function signMessage(message: SeosMessage, identity: SigningIdentity, options: SignMessageOptions = {}): Buffer {
  const { parts, digest, profile } = unsignedParts(message, options);
  const signature = buildEnvelopedSignature({ digest, identity, profile, keyInfo: options.keyInfo });
  return Buffer.concat([...parts, Buffer.from(signature, 'utf8'), END_TAG]);
}

/** signMessage with the RSA operation in libuv's thread pool (see buildEnvelopedSignatureAsync): same bytes. */
export async function signMessageAsync(message: SeosMessage, identity: SigningIdentity, options: SignMessageOptions = {}): Promise<Buffer> {
  const { parts, digest, profile } = unsignedParts(message, options);
  const signature = await buildEnvelopedSignatureAsync({ digest, identity, profile, keyInfo: options.keyInfo });
  return Buffer.concat([...parts, Buffer.from(signature, 'utf8'), END_TAG]);
}

/** The message's bytes up to its Signature, and their digest (the Signature's own end tag included, as C14N has it). */
function unsignedParts(message: SeosMessage, options: SignMessageOptions) {
  const profile = SIGNATURE_PROFILES[options.profile ?? 'rsa-sha256'];
  const hash = createHash(profile.hash);
  const parts: Buffer[] = [DECLARATION];
  for (const piece of messagePieces(message)) {
    const bytes = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : Buffer.from(attachmentBase64(piece.attachment), 'latin1');
    hash.update(bytes);
    parts.push(bytes);
  }
  hash.update(END_TAG);
  return { parts, digest: hash.digest(), profile: profile.name };
}

export interface StreamedMessage {
  readonly bytes: number;
  /** SHA-256 of the exact bytes written (the evidence hash for the delivery log). */
  readonly sha256: string;
}

/** Bytes of attachment read per step: a multiple of 3 so every chunk's base64 joins without padding. */
const STREAM_CHUNK = 3 * 64 * 1024;

/**
 * Builds, signs and writes a message to a stream with memory that does not grow with attachment size:
 * attachments (files or buffers) are base64-encoded chunk by chunk, hashed for the signature and written as they go.
 */
export async function writeSignedMessage(
  message: SeosMessage,
  identity: SigningIdentity,
  out: Writable,
  options: SignMessageOptions = {},
): Promise<StreamedMessage> {
  const profile = SIGNATURE_PROFILES[options.profile ?? 'rsa-sha256'];
  const digest = createHash(profile.hash);
  const wire = createHash('sha256');
  let bytes = 0;
  const write = async (chunk: Buffer, signed: boolean): Promise<void> => {
    if (signed) digest.update(chunk);
    wire.update(chunk);
    bytes += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  };

  const pieces = messagePieces(message);
  await write(DECLARATION, false);
  for (const piece of pieces) {
    if (typeof piece === 'string') await write(Buffer.from(piece, 'utf8'), true);
    else await streamAttachment(piece.attachment, (chunk) => write(chunk, true));
  }
  digest.update(END_TAG);
  const signature = await buildEnvelopedSignatureAsync({ digest: digest.digest(), identity, profile: profile.name, keyInfo: options.keyInfo });
  await write(Buffer.from(signature, 'utf8'), false);
  await write(END_TAG, false);
  return { bytes, sha256: wire.digest('hex') };
}

async function streamAttachment(content: AttachmentContent, emit: (chunk: Buffer) => Promise<void>): Promise<void> {
  if (content.source === 'base64') {
    await emit(Buffer.from(attachmentBase64(content), 'latin1'));
    return;
  }
  if (content.source === 'bytes') {
    for (let i = 0; i < content.bytes.length; i += STREAM_CHUNK) {
      await emit(Buffer.from(content.bytes.subarray(i, i + STREAM_CHUNK).toString('base64'), 'latin1'));
    }
    return;
  }
  let carry = Buffer.alloc(0);
  for await (const chunk of createReadStream(content.path, { highWaterMark: STREAM_CHUNK }) as AsyncIterable<Buffer>) {
    const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const usable = data.length - (data.length % 3);
    if (usable > 0) await emit(Buffer.from(data.subarray(0, usable).toString('base64'), 'latin1'));
    carry = Buffer.from(data.subarray(usable));
  }
  if (carry.length) await emit(Buffer.from(carry.toString('base64'), 'latin1'));
}

