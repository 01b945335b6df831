export {
  DeliveryLog, MAX_DETAIL_LENGTH,
  type DeliveryLogEntry, type DeliveryLogEntryType, type DeliveryLogCounterparty, type LoggedEntry,
} from './delivery-log.ts';
export { GENESIS_HASH, canonicalJson, chainHash } from './canonical-json.ts';
export { verifyDeliveryLog, type VerifyDeliveryLogOptions, type DeliveryLogVerification, type BrokenEntry } from './verify.ts';
export {
  queryDeliveryLog, iterateDeliveryLog, toCsv, toJsonLines, csvHeader, csvLine, jsonLine, CSV_COLUMNS,
  type DeliveryLogFilter,
} from './export.ts';
