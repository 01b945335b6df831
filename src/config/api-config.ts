import { readBoolean, readObject, type FieldReaders } from './readers.ts';

/**
 * The `api` section of the configuration. Add fields to ApiConfig and ApiInput, a reader in API_READERS and a
 * default in completeApi; load-config.ts merges the section into GatewayConfig.
 */
export interface ApiConfig {
  readonly enabled: boolean;
}

export interface ApiSection {
  readonly api: ApiConfig;
}

export interface ApiInput {
  api?: Partial<ApiConfig>;
}

export const API_READERS: FieldReaders<ApiInput> = {
  api: (value, path) => readObject<ApiConfig>(value, path, { enabled: readBoolean }),
};

export function completeApi(input: ApiInput): ApiSection {
  return { api: { enabled: false, ...input.api } };
}
