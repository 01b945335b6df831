import { readTlsFiles } from '../config/tls-files.ts';
import { requireSsevClientConfig, type SsevConfig, type SsevTlsConfig } from '../config/ssev-config.ts';
import { GatewayError } from '../errors/index.ts';
import { loadSigningIdentity, type SigningIdentity } from '../pki/index.ts';
import type { SsevHttpTls } from './http.ts';
import { createSsevRestClient } from './rest-client.ts';
import { createSsevSoapClient } from './soap-client.ts';
import type { SsevApi } from './types.ts';

/**
 * Builds the SSEV API client the configuration chose (`ssev.client`), with its URLs, credentials, identity
 * header parts and certificates. The gateway's signing identity is the default WS-Security certificate for the
 * SOAP client; `ssev.soap.pkcs12Path` (or keyPath + certPath) names another one (the login SSEV registered).
 */
export function createSsevApiFromConfig(config: SsevConfig, defaults: { identity?: SigningIdentity } = {}): SsevApi {
  requireSsevClientConfig(config);
  const common = {
    allowInsecureHttp: config.allowInsecureHttp, rejectUnauthorized: config.rejectUnauthorized,
    connectTimeoutMs: config.connectTimeoutMs, responseTimeoutMs: config.responseTimeoutMs,
  };
  if (config.client === 'rest') {
    const rest = config.rest;
    const id = rest.identity;
    return createSsevRestClient({
      ...common, tls: readTls(rest.tls),
      baseUrl: rest.baseUrl!, ...(rest.blobsBaseUrl ? { blobsBaseUrl: rest.blobsBaseUrl } : {}),
      ...(rest.blobDownloadOrigins.length ? { blobDownloadOrigins: rest.blobDownloadOrigins } : {}),
      ...(rest.tokenUrl ? {
        token: { url: rest.tokenUrl, clientId: rest.clientId!, clientSecret: rest.clientSecret!.reveal(), auth: rest.tokenAuth, ...(rest.scope ? { scope: rest.scope } : {}) },
      } : {}),
      identity: {
        clientOid: id.clientOid!, clientCn: id.clientCn!,
        ...(id.representedPersonId ? { representedPersonId: id.representedPersonId } : {}),
        ...(id.correspondentOid ? { correspondentOid: id.correspondentOid } : {}),
        ...(id.operatorId ? { operatorId: id.operatorId.reveal() } : {}),
      },
      templateId: rest.templateId!,
      ...(rest.textFieldId ? { textFieldId: rest.textFieldId } : {}), ...(rest.fileFieldId ? { fileFieldId: rest.fileFieldId } : {}),
    });
  }
  const soap = config.soap;
  let identity: SigningIdentity | undefined = defaults.identity;
  if (soap.pkcs12Path) identity = loadSigningIdentity({ pkcs12Path: soap.pkcs12Path, password: soap.password?.reveal() ?? '' });
  else if (soap.keyPath && soap.certPath) identity = loadSigningIdentity({ keyPath: soap.keyPath, certPath: soap.certPath, passphrase: soap.password?.reveal() });
  if (!identity) throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.ssev.soap: a certificate for WS-Security is required (pkcs12Path, or keyPath and certPath, or the gateway signing identity)');
  return createSsevSoapClient({
    ...common, tls: readTls(soap.tls), url: soap.url!, identity, signatureProfile: soap.signatureProfile,
    timestampTtlSeconds: soap.timestampTtlSeconds,
    ...(soap.operatorEgn ? { operatorEgn: soap.operatorEgn.reveal() } : {}), ...(soap.serviceOid ? { serviceOid: soap.serviceOid } : {}),
  });
}

function readTls(tls: SsevTlsConfig | undefined): SsevHttpTls | undefined {
  return readTlsFiles(tls, '$.ssev tls');
}
