export * from './model.ts';
export { newGuid, isGuid, requireGuid, normalizeGuid, sameGuid, isXsdDate, isXsdDateTime, formatDateTime, formatDate, dateTimeToInstant } from './values.ts';
export { buildRegistrationRequest, buildStatusRequest, buildStatusResponse, buildErrorMessage, type Parties, type StatusResponseInput } from './builders.ts';
export { buildUnsignedMessage, messagePieces, attachmentBase64, type MessagePiece } from './build.ts';
export { parseMessageXml, parseMessageDocument, parseMessageHeader, isBase64 } from './parse.ts';
export { signMessage, signMessageAsync, writeSignedMessage, type SignMessageOptions, type StreamedMessage } from './sign-message.ts';
export { verifySignedMessage, verifyMessageSignature, type VerifyMessageOptions, type VerifiedMessage } from './verify-message.ts';
