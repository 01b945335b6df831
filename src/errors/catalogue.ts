/**
 * The one catalogue of coded errors. Every error the gateway reports to a caller, a peer or an operator comes
 * from here, so that codes stay stable and `docs/errors.md` (generated from this file and checked by a test)
 * never drifts from the code.
 *
 * `bg` is what municipal staff read (it also becomes the ErrorDescription of a SEOS MSG_Error), `en` helps the
 * developer or integrator, `status` is the HTTP status the REST API answers with, and `seos` names the matching
 * description key of the reference implementation's Resource.resx where one exists.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly bg: string;
  readonly en: string;
  readonly seos?: SeosErrorKey;
}

/** Error description keys of the government reference implementation (seos/EDelivery.SEOS/Resources/Resource.resx). */
export type SeosErrorKey =
  | 'InvalidXmlDocument'
  | 'InvalidXSDSchema'
  | 'InvalidSender'
  | 'InvalidReceiver'
  | 'InvalidMessageSignature'
  | 'InvalidMessageSignatureCertificate'
  | 'DuplicateMessageGuid'
  | 'ErrorDocumentIsNotFound';

export const ERRORS = {
  // ── XML safety: what comes in is parsed without DOCTYPE, entities, network or file access, within bounds ──
  GW_ERR_XML_MALFORMED: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'Съобщението не е добре формиран XML документ.',
    en: 'The input is not well-formed XML.',
  },
  GW_ERR_XML_DOCTYPE: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'XML документът съдържа DOCTYPE или декларация на същност, което не се допуска.',
    en: 'DOCTYPE and entity declarations are refused (XXE and entity-expansion protection).',
  },
  GW_ERR_XML_UNKNOWN_ENTITY: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'XML документът използва недекларирана същност (entity).',
    en: 'The XML refers to an entity other than the five predefined ones.',
  },
  GW_ERR_XML_TOO_LARGE: {
    status: 413, seos: 'InvalidXmlDocument',
    bg: 'Съобщението надвишава допустимия размер.',
    en: 'The XML exceeds the configured size limit.',
  },
  GW_ERR_XML_TOO_DEEP: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'XML документът е с прекалено дълбоко влагане на елементи.',
    en: 'The XML nests elements deeper than the configured limit.',
  },
  GW_ERR_XML_TOO_MANY_ATTRIBUTES: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'XML елемент има прекалено много атрибути.',
    en: 'An element carries more attributes than the configured limit.',
  },
  GW_ERR_XML_NAMESPACE: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'XML документът използва недеклариран префикс на пространство от имена.',
    en: 'The XML uses an unbound namespace prefix or an invalid namespace declaration.',
  },
  GW_ERR_XML_ENCODING: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'XML документът не е в кодировка UTF-8.',
    en: 'Only UTF-8 is accepted; the input declares another encoding or contains invalid UTF-8.',
  },
  GW_ERR_XML_INVALID_CHAR: {
    status: 400,
    bg: 'Текстът съдържа символ, който не е допустим в XML.',
    en: 'A text value contains a character that XML 1.0 does not allow.',
  },

  // ── SEOS message structure (the schema, enforced by our parser and builder) ──
  GW_ERR_SEOS_NOT_A_MESSAGE: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Документът не е съобщение по СЕОС (очаква се елемент Message в пространството http://schemas.egov.bg/messaging/v1).',
    en: 'The root element is not {http://schemas.egov.bg/messaging/v1}Message.',
  },
  GW_ERR_SEOS_SCHEMA: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Съобщението не отговаря на XSD схемата на СЕОС.',
    en: 'The message does not follow the SEOS schema (a missing, unexpected or misplaced element).',
  },
  GW_ERR_SEOS_BAD_GUID: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Невалиден GUID (очаква се формат {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}).',
    en: 'A GUID is not in the braced form {xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}.',
  },
  GW_ERR_SEOS_BAD_DATE: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Невалидна дата или дата и час.',
    en: 'A value is not a valid xsd:date or xsd:dateTime.',
  },
  GW_ERR_SEOS_BAD_VALUE: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Невалидна стойност на поле в съобщението.',
    en: 'A value is outside its allowed set or format.',
  },
  GW_ERR_SEOS_BAD_BASE64: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Съдържанието на прикачен файл не е валиден base64.',
    en: 'An attachment body is not valid base64.',
  },
  GW_ERR_SEOS_TYPE_MISMATCH: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Типът на съобщението в заглавната част не съответства на съдържанието му.',
    en: 'Header/MessageType does not match the element in Body.',
  },
  GW_ERR_SEOS_UNSUPPORTED_VERSION: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Неподдържана версия на протокола (поддържа се версия 1).',
    en: 'Header/Version must be "1" or "1.0".',
  },
  GW_ERR_SEOS_INVALID_INPUT: {
    status: 400,
    bg: 'Входните данни за съобщението са непълни или невалидни.',
    en: 'The message description given to the builder is incomplete or invalid.',
  },

  // ── XML signatures ──
  GW_ERR_SIG_MISSING: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Съобщението не е подписано.',
    en: 'The message carries no XMLDSig Signature.',
  },
  GW_ERR_SIG_EXTRA_SIGNATURE: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Съобщението съдържа повече от един електронен подпис.',
    en: 'More than one Signature element; a second one ahead of the real one would fool first-match verifiers.',
  },
  GW_ERR_SIG_MISPLACED: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис не е на мястото си (последен елемент на Message).',
    en: 'The Signature is not the last child element of Message.',
  },
  GW_ERR_SIG_WRAPPED: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Подписаният елемент не е елементът, който се обработва (signature wrapping).',
    en: 'The element that would be acted on is not the element that was signed (signature wrapping).',
  },
  GW_ERR_SIG_STRUCTURE: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис е със сгрешена структура.',
    en: 'The Signature element lacks a required part (SignedInfo, Reference, DigestValue, SignatureValue).',
  },
  GW_ERR_SIG_REFERENCE_COUNT: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис трябва да има точно една референция.',
    en: 'SignedInfo must contain exactly one Reference.',
  },
  GW_ERR_SIG_REFERENCE_URI: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис трябва да обхваща цялото съобщение (Reference URI="").',
    en: 'The Reference URI must be "" (the whole message).',
  },
  GW_ERR_SIG_TRANSFORMS: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис използва непозволени трансформации.',
    en: 'Only the enveloped-signature transform (optionally followed by inclusive C14N 1.0) is allowed.',
  },
  GW_ERR_SIG_ALGORITHM: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис използва неподдържан или непозволен алгоритъм.',
    en: 'Unsupported or disallowed canonicalization, digest or signature algorithm.',
  },
  GW_ERR_SIG_DIGEST_MISMATCH: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Съдържанието на съобщението е променено след подписването.',
    en: 'The digest of the message does not match DigestValue: the content was altered after signing.',
  },
  GW_ERR_SIG_INVALID: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис е невалиден (не е положен с ключа на приложения сертификат).',
    en: 'SignatureValue does not verify with the certificate\'s key (wrong key or altered SignedInfo).',
  },
  GW_ERR_SIG_NO_CERTIFICATE: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Електронният подпис не съдържа сертификат на подписващия.',
    en: 'KeyInfo/X509Data/X509Certificate is missing.',
  },
  GW_ERR_SIG_BAD_CERTIFICATE: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Сертификатът в електронния подпис не може да бъде прочетен или не е RSA.',
    en: 'The certificate in KeyInfo cannot be parsed or does not hold an RSA key.',
  },
  GW_ERR_SIG_KEYINFO_MISMATCH: {
    status: 400, seos: 'InvalidMessageSignature',
    bg: 'Серийният номер в X509IssuerSerial не съответства на сертификата в подписа.',
    en: 'X509IssuerSerial names a serial number other than the certificate\'s.',
  },
  GW_ERR_SIG_CERT_NOT_TRUSTED: {
    status: 403, seos: 'InvalidMessageSignatureCertificate',
    bg: 'Съобщението е подписано със сертификат, различен от регистрирания за подателя.',
    en: 'The signing certificate is not the one expected for this sender.',
  },
  GW_ERR_SIG_CERT_EXPIRED: {
    status: 403, seos: 'InvalidMessageSignatureCertificate',
    bg: 'Сертификатът, с който е подписано съобщението, е изтекъл или още не е валиден.',
    en: 'The signing certificate was not valid at the time of verification.',
  },

  // ── Keys and certificates ──
  GW_ERR_PKI_UNREADABLE: {
    status: 500,
    bg: 'Файлът с ключ или сертификат не може да бъде прочетен.',
    en: 'The key or certificate file is missing, unreadable or not PKCS#12/PEM.',
  },
  GW_ERR_PKI_BAD_PASSWORD: {
    status: 500,
    bg: 'Грешна парола за файла с ключ (PKCS#12).',
    en: 'Wrong password for the PKCS#12 file.',
  },
  GW_ERR_PKI_NO_PRIVATE_KEY: {
    status: 500,
    bg: 'Файлът не съдържа частен ключ.',
    en: 'The file holds no private key.',
  },
  GW_ERR_PKI_NO_CERTIFICATE: {
    status: 500,
    bg: 'Файлът не съдържа сертификат.',
    en: 'The file holds no certificate.',
  },
  GW_ERR_PKI_KEY_MISMATCH: {
    status: 500,
    bg: 'Частният ключ не съответства на сертификата.',
    en: 'The private key does not belong to the certificate.',
  },
  GW_ERR_PKI_UNSUPPORTED_KEY: {
    status: 500,
    bg: 'Поддържат се само RSA ключове.',
    en: 'Only RSA keys are supported (the SEOS reference requires RSA).',
  },
  GW_ERR_PKI_CERT_EXPIRED: {
    status: 500,
    bg: 'Сертификатът е изтекъл.',
    en: 'The certificate has expired.',
  },
  GW_ERR_PKI_CERT_NOT_YET_VALID: {
    status: 500,
    bg: 'Сертификатът още не е валиден.',
    en: 'The certificate is not yet valid.',
  },

  // ── Tools, configuration, CLI ──
  GW_ERR_TOOL_MISSING: {
    status: 500,
    bg: 'Липсва системна програма, необходима за тази операция.',
    en: 'A required system tool is not installed (xmllint: apt-get install libxml2-utils; xmlsec1: apt-get install xmlsec1).',
  },
  GW_ERR_SCHEMA_INVALID: {
    status: 400, seos: 'InvalidXSDSchema',
    bg: 'Документът не преминава проверка по XSD схема.',
    en: 'xmllint reported schema validation errors.',
  },
  GW_ERR_CONFIG_INVALID: {
    status: 500,
    bg: 'Конфигурацията е невалидна.',
    en: 'The configuration file or environment is invalid.',
  },
  GW_ERR_CLI_USAGE: {
    status: 400,
    bg: 'Грешно извикване на командата.',
    en: 'The command was called with wrong or missing arguments.',
  },
  GW_ERR_CLI_INPUT: {
    status: 400,
    bg: 'Входният файл липсва или не може да бъде прочетен.',
    en: 'The input file is missing, unreadable or not the expected format.',
  },

  // ── HTTP API ──
  GW_ERR_NOT_FOUND: {
    status: 404,
    bg: 'Ресурсът не е намерен.',
    en: 'No resource or route matches this method and path.',
  },
  // ── SEOS registry and participants ──
  GW_ERR_REGISTRY_UNAVAILABLE: {
    status: 502,
    bg: 'Регистърът на участниците в СЕОС не отговаря.',
    en: 'The SEOS registry could not be reached (connection, TLS or timeout).',
  },
  GW_ERR_REGISTRY_BAD_RESPONSE: {
    status: 502,
    bg: 'Регистърът на участниците в СЕОС върна неразбираем отговор.',
    en: 'The SEOS registry answered with something that is not a valid rpc/encoded response.',
  },
  GW_ERR_REGISTRY_FAULT: {
    status: 502,
    bg: 'Регистърът на участниците в СЕОС върна грешка (SOAP Fault).',
    en: 'The SEOS registry answered with a SOAP Fault.',
  },
  GW_ERR_PARTICIPANT_NOT_FOUND: {
    status: 404, seos: 'InvalidReceiver',
    bg: 'Участникът не е намерен в регистъра на СЕОС.',
    en: 'No participant with this ЕИК or GUID in the local copy of the registry.',
  },
  GW_ERR_PARTICIPANT_INACTIVE: {
    status: 409, seos: 'InvalidSender',
    bg: 'Участникът не е активен в регистъра на СЕОС.',
    en: 'The participant is not Active in the registry.',
  },
  GW_ERR_PARTICIPANT_NO_ENDPOINT: {
    status: 409,
    bg: 'Участникът няма адрес за обмен на документи в регистъра на СЕОС.',
    en: 'The participant has no usable document-exchange service URI.',
  },

  // ── SEOS transport (Submit) ──
  GW_ERR_SOAP_MALFORMED: {
    status: 400, seos: 'InvalidXmlDocument',
    bg: 'Заявката не е валидно SOAP съобщение Submit.',
    en: 'The request is not a SOAP 1.1 Submit envelope with the message in <request>.',
  },
  GW_ERR_SEOS_TRANSPORT: {
    status: 502,
    bg: 'Неуспешна връзка с получателя (мрежова грешка); ще бъде направен нов опит.',
    en: 'The peer could not be reached or the connection failed; retryable.',
  },
  GW_ERR_SEOS_TIMEOUT: {
    status: 504,
    bg: 'Получателят не отговори навреме; ще бъде направен нов опит.',
    en: 'The peer did not answer within the timeout; retryable.',
  },
  GW_ERR_SEOS_PEER_FAULT: {
    status: 502,
    bg: 'Получателят отказа съобщението (SOAP Fault).',
    en: 'The peer answered with a SOAP Fault; not retried.',
  },
  GW_ERR_SEOS_PEER_ERROR: {
    status: 502,
    bg: 'Получателят отказа съобщението (съобщение за грешка MSG_Error).',
    en: 'The peer answered with a signed MSG_Error; not retried.',
  },
  GW_ERR_SEOS_REPLY_INVALID: {
    status: 502,
    bg: 'Отговорът на получателя е невалиден или не е подписан правилно.',
    en: 'The peer\'s reply could not be parsed, verified or matched to our message.',
  },
  GW_ERR_SEOS_INSECURE_URL: {
    status: 500,
    bg: 'Адресът на получателя не е HTTPS, а нешифрована връзка не е разрешена в конфигурацията.',
    en: 'The peer URL is plain HTTP and plain HTTP is not allowed by the configuration.',
  },

  // ── SEOS receiver (our endpoint) ──
  GW_ERR_SEOS_WRONG_RECIPIENT: {
    status: 400, seos: 'InvalidReceiver',
    bg: 'Получателят на съобщението не се обслужва от този възел.',
    en: 'Header/Recipient is not this administration.',
  },
  GW_ERR_SEOS_UNKNOWN_SENDER: {
    status: 403, seos: 'InvalidSender',
    bg: 'Подателят не е активен участник в регистъра на СЕОС.',
    en: 'Header/Sender is not an active participant in the registry.',
  },
  GW_ERR_SEOS_DUPLICATE_MESSAGE: {
    status: 409, seos: 'DuplicateMessageGuid',
    bg: 'Съобщение със същия идентификатор (MessageGUID) вече е получено.',
    en: 'A message with this MessageGUID was already received.',
  },
  GW_ERR_SEOS_DOCUMENT_NOT_FOUND: {
    status: 404, seos: 'ErrorDocumentIsNotFound',
    bg: 'Документът не е намерен.',
    en: 'No document with this DocumentGUID exchanged with this participant.',
  },
  GW_ERR_DOCUMENT_EXISTS: {
    status: 409,
    bg: 'Документ със същия идентификатор (DocumentGUID) вече е изпратен на този получател.',
    en: 'A document with this DocumentGUID was already sent to this recipient; use its status or a new GUID.',
  },
  GW_ERR_INTERNAL: {
    status: 500,
    bg: 'Вътрешна грешка в шлюза; съобщението не е прието и може да бъде изпратено отново.',
    en: 'An internal error (database, disk); nothing was accepted, the sender may retry.',
  },

  // ── Store, archive and delivery log ──
  GW_ERR_STORE_IO: {
    status: 500,
    bg: 'Грешка при запис или четене на файл в хранилището на шлюза.',
    en: 'A spool or archive file could not be written or read.',
  },
  GW_ERR_AUDIT_CHAIN_BROKEN: {
    status: 500,
    bg: 'Веригата на дневника на доставките е нарушена: запис е променен, изтрит или вмъкнат.',
    en: 'The hash chain of the delivery log does not verify at the named entry.',
  },
  GW_ERR_AUDIT_ARCHIVE_MISSING: {
    status: 500,
    bg: 'Архивираното съобщение липсва.',
    en: 'An archived wire message referenced by the delivery log is missing.',
  },
  GW_ERR_AUDIT_ARCHIVE_CORRUPT: {
    status: 500,
    bg: 'Архивираното съобщение е променено (контролната сума не съвпада).',
    en: 'An archived wire message does not match its SHA-256.',
  },

  // ── Webhooks to the records system ──
  GW_ERR_WEBHOOK_UNREACHABLE: {
    status: 502,
    bg: 'Деловодната система не прие известието (няма връзка, изтекло време или грешка 5xx); ще бъде направен нов опит.',
    en: 'The records system\'s webhook URL could not be reached or answered 5xx/408/429; retried.',
  },
  GW_ERR_WEBHOOK_REFUSED: {
    status: 502,
    bg: 'Деловодната система отказа известието (грешка 4xx); няма да бъде изпращано отново.',
    en: 'The records system\'s webhook answered 4xx; not retried (resend it after fixing the receiver).',
  },

  // ── Records-system REST API ──
  GW_ERR_API_VALIDATION: {
    status: 400,
    bg: 'Заявката е невалидна: поле липсва, има грешен тип или формат, или е непознато. Полето е посочено в подробностите.',
    en: 'The request does not match its JSON Schema (missing, wrongly typed, malformed or unknown field); the detail names the field.',
  },
  GW_ERR_API_UNAUTHORIZED: {
    status: 401,
    bg: 'Липсва валиден API ключ (заглавка Authorization: Bearer <ключ> или X-Api-Key), или ключът е отменен.',
    en: 'No valid API key was given (Authorization: Bearer <key> or X-Api-Key), or the key was revoked.',
  },
  GW_ERR_API_FORBIDDEN: {
    status: 403,
    bg: 'Ролята на този API ключ не позволява това действие.',
    en: 'The role of this API key does not allow this operation.',
  },
  GW_ERR_API_TOO_LARGE: {
    status: 413,
    bg: 'Заявката или прикаченият файл надвишава допустимия размер; нищо не е записано.',
    en: 'The request body or an uploaded file exceeds the configured size limit; nothing was stored.',
  },
  GW_ERR_API_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    bg: 'Форматът на заявката не се поддържа (очаква се application/json или multipart/form-data).',
    en: 'The request Content-Type is not supported here (application/json or multipart/form-data is expected).',
  },
  GW_ERR_API_BAD_FILE_NAME: {
    status: 400,
    bg: 'Недопустимо име на файл: без разделители на пътища (/ и \\), без "..", без управляващи знаци, до 255 байта.',
    en: 'The file name is not allowed: no path separators, no "..", no control characters, at most 255 bytes of UTF-8.',
  },
  GW_ERR_API_CONFLICT: {
    status: 409,
    bg: 'Заявката противоречи на вече записаното (например същият идентификатор за друг документ или недопустима смяна на статус).',
    en: 'The request conflicts with what is already recorded (e.g. the same id for another document, or a status change that is not allowed).',
  },
  GW_ERR_API_DOCUMENT_NOT_FOUND: {
    status: 404,
    bg: 'Няма документ с този идентификатор.',
    en: 'No document with this id (in this direction) is known to the gateway.',
  },
  GW_ERR_API_DELIVERY_NOT_FOUND: {
    status: 404,
    bg: 'Няма доставка с този идентификатор.',
    en: 'No delivery (outbox entry) with this id is known to the gateway.',
  },
  // (end of the REST API section)

  // ── eJournal and RNU ──
  GW_ERR_EJOURNAL_RNU_INVALID: {
    status: 400,
    bg: 'Референтният номер на услугата (РНУ) е невалиден: очаква се непразен текст до 64 знака без управляващи символи и без интервали в началото и края.',
    en: 'The service reference number (RNU) is invalid: expected a non-empty string of at most 64 characters, without control characters and without leading or trailing spaces.',
  },
  GW_ERR_EJOURNAL_STATUS_UNKNOWN: {
    status: 400,
    bg: 'Статусът на услугата не е в речника на статусите, зададен в конфигурацията на шлюза.',
    en: 'The status is not in the status vocabulary configured for eJournal.',
  },
  GW_ERR_EJOURNAL_EVENT_INVALID: {
    status: 400,
    bg: 'Събитието за еЖурнал е непълно или невалидно (време, администрация, код на услугата, канал или текстово поле).',
    en: 'The eJournal event is incomplete or invalid (time, administration, service code, channel or a text field).',
  },
  GW_ERR_EJOURNAL_OUT_OF_ORDER: {
    status: 409,
    bg: 'Събитието е по-ранно от вече изпратено събитие за същия РНУ, а конфигурацията не допуска закъснели събития.',
    en: 'The event happened before an event of the same RNU that was already sent, and the configuration refuses late events.',
  },
  GW_ERR_EJOURNAL_NOT_FOUND: {
    status: 404,
    bg: 'Няма данни в шлюза за този РНУ или това събитие.',
    en: 'The gateway knows no event or document for this RNU, or no event with this id.',
  },
  GW_ERR_EJOURNAL_RNU_CONFLICT: {
    status: 409,
    bg: 'Документът вече има друг РНУ.',
    en: 'The document already carries a different RNU.',
  },
  GW_ERR_EJOURNAL_EVENT_STATE: {
    status: 409,
    bg: 'Действието не е допустимо за събитие в това състояние.',
    en: 'The operator action is not allowed in the event\'s current delivery state.',
  },
  GW_ERR_EJOURNAL_REJECTED: {
    status: 502,
    bg: 'еЖурнал отказа събитието; повторен опит няма да помогне (вижте причината при събитието).',
    en: 'eJournal refused the event; it is not retried (the reason is kept with the event).',
  },
  GW_ERR_EJOURNAL_UNAVAILABLE: {
    status: 503,
    bg: 'еЖурнал не е достъпен или временно не приема събития; ще бъде направен нов опит.',
    en: 'eJournal could not be reached or answered with a temporary error; the event is retried.',
  },
  GW_ERR_EJOURNAL_AUTH: {
    status: 502,
    bg: 'Шлюзът не получи достъп до еЖурнал (OAuth2): проверете идентификатора и тайната на клиента.',
    en: 'No usable OAuth2 access token for eJournal (the token endpoint failed, or a fresh token was refused); check the client credentials.',
  },
  GW_ERR_RNU_SERVICE_FAILED: {
    status: 502,
    bg: 'Централната услуга за РНУ не издаде номер.',
    en: 'The central RNU (ORN) service did not issue a number (transport error, error return code or no number in the reply).',
  },
  GW_ERR_EJOURNAL_DISABLED: {
    status: 404,
    bg: 'Връзката с еЖурнал не е включена в конфигурацията на шлюза (ejournal.enabled).',
    en: 'eJournal is not enabled in this gateway\'s configuration (ejournal.enabled), so its API routes are not available.',
  },
  // (end of the eJournal section)

  // ── SSEV ──
  GW_ERR_SSEV_NO_CHANNEL: {
    status: 422,
    bg: 'Получателят не е активен участник в СЕОС и няма профил в ССЕВ; документът не може да бъде изпратен и не е приет.',
    en: 'The recipient is neither an active SEOS participant with a usable endpoint nor an SSEV profile; nothing was queued.',
  },
  GW_ERR_SSEV_INVALID_RECIPIENT: {
    status: 400,
    bg: 'Получателят не е посочен правилно (нужни са ЕИК/БУЛСТАТ, ЕГН/ЛНЧ или GUID в СЕОС, съвместими с избрания канал).',
    en: 'The recipient is missing or malformed (an ЕИК/БУЛСТАТ, ЕГН/ЛНЧ or SEOS GUID that suits the chosen channel is required).',
  },
  GW_ERR_SSEV_NO_PROFILE: {
    status: 404,
    bg: 'Получателят няма активен профил в ССЕВ.',
    en: 'No active SSEV profile matches this identifier.',
  },
  GW_ERR_SSEV_INVALID_INPUT: {
    status: 400,
    bg: 'Съобщението за ССЕВ е непълно или невалидно (заглавие, текст, имена на файлове).',
    en: 'The SSEV message is incomplete or invalid (subject, text, file names); nothing was queued.',
  },
  GW_ERR_SSEV_TOO_MANY_ATTACHMENTS: {
    status: 413,
    bg: 'Съобщението има повече прикачени файлове, отколкото ССЕВ допуска.',
    en: 'The message has more attachments than SSEV accepts; nothing was queued.',
  },
  GW_ERR_SSEV_TOO_LARGE: {
    status: 413,
    bg: 'Прикачен файл или съобщението като цяло надвишава размера, който ССЕВ допуска.',
    en: 'An attachment or the whole message exceeds the size SSEV accepts; nothing was queued.',
  },
  GW_ERR_SSEV_UNAVAILABLE: {
    status: 502,
    bg: 'ССЕВ не отговаря (мрежова грешка, изтекло време или временна грешка на сървъра); ще бъде направен нов опит.',
    en: 'SSEV could not be reached, timed out or answered with a temporary server error; retryable.',
  },
  GW_ERR_SSEV_AUTH: {
    status: 502,
    bg: 'ССЕВ или държавната шина отказаха удостоверяването на шлюза (токен, сертификат или Dp-Miscinfo).',
    en: 'SSEV or the government ESB refused the gateway\'s credentials (OAuth2 token, certificate or Dp-Miscinfo identity).',
  },
  GW_ERR_SSEV_REJECTED: {
    status: 502,
    bg: 'ССЕВ отказа заявката (невалидни данни или липса на права); няма да бъде направен нов опит.',
    en: 'SSEV refused the request (validation or permission, HTTP 4xx); not retried.',
  },
  GW_ERR_SSEV_BAD_RESPONSE: {
    status: 502,
    bg: 'ССЕВ върна неразбираем или прекалено голям отговор.',
    en: 'SSEV answered with something that is not the documented shape, or with an answer over the size limit.',
  },
  GW_ERR_SSEV_SOAP_FAULT: {
    status: 502,
    bg: 'Интеграционната услуга на ССЕВ върна грешка (SOAP Fault).',
    en: 'The SSEV SOAP integration service answered with a SOAP Fault.',
  },
  GW_ERR_SSEV_NOT_FOUND: {
    status: 404,
    bg: 'Съобщението или профилът не е намерен в ССЕВ.',
    en: 'SSEV does not know this message or profile, or it is not accessible to this gateway.',
  },
  GW_ERR_SSEV_WSSE: {
    status: 400,
    bg: 'Заглавната част WS-Security на SOAP заявката липсва или е невалидна (подпис, времеви печат, сертификат).',
    en: 'The WS-Security header is missing or invalid (signature, timestamp or X.509 token).',
  },
  GW_ERR_SSEV_PUSH_MALFORMED: {
    status: 400,
    bg: 'Известието от ССЕВ не е във формата {"EventType":"Received"|"Delivered","MessageId":<число>}.',
    en: 'The SSEV push notification is not {"EventType":"Received"|"Delivered","MessageId":<int>}.',
  },
  GW_ERR_SSEV_INSECURE_URL: {
    status: 500,
    bg: 'Адресът на ССЕВ не е HTTPS, а нешифрована връзка не е разрешена в конфигурацията.',
    en: 'An SSEV URL is plain HTTP (or not an absolute URL) and plain HTTP is not allowed by the configuration.',
  },
  GW_ERR_SSEV_NOT_CONFIGURED: {
    status: 422,
    bg: 'ССЕВ не е настроен в този шлюз: до физически лица, фирми и администрации извън СЕОС не може да се изпраща; документът не е приет.',
    en: 'SSEV is not configured in this gateway (ssev.enabled), so people, companies and administrations outside SEOS cannot be reached; nothing was queued.',
  },
  GW_ERR_SSEV_AMBIGUOUS_RECIPIENT: {
    status: 422,
    bg: 'Няколко активни участници в СЕОС имат този ЕИК; посочете получателя с неговия GUID в СЕОС. Документът не е приет.',
    en: 'Several active SEOS participants share this ЕИК; name the recipient by its SEOS GUID (it is not sent over SSEV instead); nothing was queued.',
  },
  // (end of the SSEV section)
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
