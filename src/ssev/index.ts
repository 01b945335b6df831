/**
 * SSEV (ССЕВ, eDelivery): the gateway's channel to people, companies and administrations outside SEOS.
 * Clients for both SSEV APIs (ESB REST, SOAP integration service), the channel (send, delivery confirmation,
 * inbox), routing between SEOS and SSEV, and the push-notification endpoint.
 */
export {
  type SsevApi, type SsevApiKind, type SsevSubjectKind, type SsevAddress, type SsevProfile, type SsevOutgoingMessage,
  type SsevOutgoingAttachment, type SsevSentStatus, type SsevReceivedMessage, type SsevReceivedAttachment, type SsevSender,
  type SsevSpool, TARGET_GROUP_OF, KIND_OF_TARGET_GROUP,
} from './types.ts';
export { createSsevChannel, type SsevChannel, type PushEvent, type PushOutcome } from './channel.ts';
export { type SsevChannelDeps, type SsevLogger, type SsevSpoolStore, OUTBOX_KIND as SSEV_OUTBOX_KIND, SSEV_DESTINATION } from './context.ts';
export { type SsevSendInput, type SsevAttachmentInput, type QueuedSsevDocument } from './send.ts';
export { type DeliveryCheck } from './status.ts';
export { documentGuidOf } from './inbox.ts';
export { checkLimits, resolveLimits, DEFAULT_LIMITS, REST_MAX_BLOB_BYTES, type SsevLimits, type LimitsInput } from './limits.ts';
export {
  chooseChannel, reasonJson,
  type RoutingRequest, type RoutingRecipient, type RoutingLookups, type RoutingDecision, type SeosCandidate, type ChannelReason,
} from './routing.ts';
export { ssevPushEndpoint, parsePush, type SsevPushEndpointOptions } from './push-endpoint.ts';
export {
  createSsevRestClient, kindsFor,
  type SsevRestClient, type SsevRestClientOptions, type SsevRestTokenOptions, type RestTemplate, type RestProfile,
  type RestProfileCheck, type RestMessageView, type RestOpenedMessage,
} from './rest-client.ts';
export { createSsevSoapClient, type SsevSoapClient, type SsevSoapClientOptions, type BuiltSoapRequest } from './soap-client.ts';
export {
  SOAP_OPERATIONS, INTEGRATION_NS, DC_NS, soapAction, buildRequestBody, parseResponse,
  type SoapOperation, type SoapProfileType, type SoapRequestArgs, type DcMessageInfo, type DcMessageDetailsInfo,
  type DcSubjectRegistrationInfo, type DcInstitutionInfo, type SoapFaultInfo,
} from './soap-envelope.ts';
export { secureEnvelope, verifyWsSecurity, WSSE_NS, WSU_NS, EXC_C14N, type VerifiedWsSecurity, type VerifyWsSecurityOptions } from './wssecurity.ts';
export { buildDpMiscinfo, parseDpMiscinfo, type DpMiscinfoParts } from './dp-miscinfo.ts';
export { buildMtom, parseMtom, buildFormData, parseMultipart, formDataFileName, XOP_NS, type MtomPackage } from './multipart.ts';
export { createSsevApiFromConfig } from './from-config.ts';
export { getChannelReason, setChannelReason, getSsevMessage, ssevMessageOfDocument, type SsevMessageRow } from './store.ts';
export { classifyRecipient, isValidEgn, isValidLnch, isValidPersonalNumber, type RecipientIdentifier } from './identifiers.ts';
