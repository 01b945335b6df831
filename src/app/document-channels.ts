import { GatewayError, isGatewayError } from '../errors/index.ts';
import type { ParticipantDirectory } from '../seos/registry/index.ts';
import { chooseChannel, type RoutingDecision, type SeosCandidate, type SsevAddress, type SsevProfile } from '../ssev/index.ts';
import { classifyRecipient, isValidPersonalNumber } from '../ssev/identifiers.ts';

/**
 * The channel of an outgoing document, as the records-system API asks for it: the recipient as the records
 * system wrote it (ЕИК/БУЛСТАТ, ЕГН/ЛНЧ or SEOS GUID) and an optional forced channel, turned into
 * ssev/routing.ts's decision with the gateway's participant directory and, when SSEV is configured, its
 * profile lookup. Changes nothing; throws the coded error the records system should see.
 *
 * Without SSEV the gateway behaves as it did before SSEV existed: administrations over SEOS (the directory's own
 * GW_ERR_PARTICIPANT_* errors), and GW_ERR_SSEV_NOT_CONFIGURED for a person or a forced SSEV.
 */
export type ChannelName = 'seos' | 'ssev';

export interface DocumentChannels {
  choose(recipient: string, force?: ChannelName): Promise<RoutingDecision>;
}

export interface DocumentChannelsDeps {
  readonly directory: Pick<ParticipantDirectory, 'requireActiveEndpoint' | 'byEik'>;
  /** SsevChannel.lookupProfile, when SSEV is configured. */
  readonly ssevLookup?: (address: SsevAddress) => Promise<SsevProfile | null>;
}

export function createDocumentChannels(deps: DocumentChannelsDeps): DocumentChannels {
  function seosLookup(key: string): SeosCandidate {
    try {
      const { participant } = deps.directory.requireActiveEndpoint(key);
      return { guid: participant.guid, eik: participant.eik, name: participant.name };
    } catch (error) {
      // Several active participants under one ЕИК (departments of one body): the records system must pick one by
      // GUID. Routing would otherwise take "not found" for "not in SEOS" and try SSEV instead.
      if (isGatewayError(error, 'GW_ERR_PARTICIPANT_NOT_FOUND') && /^\d+$/.test(key)
        && deps.directory.byEik(key).filter((p) => p.status === 'Active').length > 1) {
        throw new GatewayError('GW_ERR_SSEV_AMBIGUOUS_RECIPIENT', 'several active SEOS participants share this ЕИК');
      }
      throw error;
    }
  }

  return {
    async choose(recipient, force) {
      const id = classifyRecipient(recipient);
      // The details name the field, never its value (an ЕГН is personal data and details reach the logs).
      if (!id) throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'body.recipient: an ЕИК/БУЛСТАТ (9 or 13 digits), an ЕГН/ЛНЧ (10 digits) or a SEOS GUID');
      if (id.type === 'egn' && !isValidPersonalNumber(id.value)) {
        throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'body.recipient: not a valid ЕГН/ЛНЧ (wrong check digit)');
      }
      if (force !== undefined && force !== 'seos' && force !== 'ssev') throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'body.channel: "seos" or "ssev"');
      if (!deps.ssevLookup) {
        if (force === 'ssev' || id.type === 'egn') throw new GatewayError('GW_ERR_SSEV_NOT_CONFIGURED');
        return {
          channel: 'seos', seos: seosLookup(id.value),
          reason: force === 'seos'
            ? { code: 'forced-seos', bg: 'Каналът СЕОС е избран от деловодната система.', en: 'The records system chose SEOS.' }
            : { code: 'seos-participant', bg: 'Получателят е активен участник в СЕОС с използваем адрес.', en: 'The recipient is an active SEOS participant with a usable endpoint.' },
        };
      }
      return chooseChannel({ recipient: { [id.type]: id.value }, ...(force ? { force } : {}) }, { seosLookup, ssevLookup: deps.ssevLookup });
    },
  };
}
