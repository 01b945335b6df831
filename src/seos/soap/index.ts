export {
  SOAP11_ENVELOPE_NS, SOAP12_ENVELOPE_NS, SEOS_SERVICE_NS, SUBMIT_ACTION, SUBMIT_RESPONSE_ACTION, SOAP11_CONTENT_TYPE,
  buildSubmitRequest, submitRequestParts, buildSubmitResponse, buildSoapFault,
  parseSubmitRequest, parseSubmitResponse,
  type SubmitResponse, type SoapFault,
} from './envelope.ts';
export {
  createSeosClient, isDuplicateMessageGuidText,
  type SeosClient, type SeosClientOptions, type ArchivedMessage, type SeosClientTlsOptions, type SubmitExpectation, type SubmitOutcome,
  type VerifiedReply, type UnverifiedReplyProblem,
} from './client.ts';
