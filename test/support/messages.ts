import type { SeosDocument, SeosMessage, Participant } from '../../src/seos/index.ts';
import { buildRegistrationRequest } from '../../src/seos/index.ts';

export const ALFA: Participant = { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: '{0a1f0000-0000-4000-8000-000000000001}' };
export const BETA: Participant = { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: '{0b2e0000-0000-4000-8000-000000000002}' };

export function sampleDocument(overrides: Partial<SeosDocument> = {}): SeosDocument {
  return {
    id: { number: { docNumber: 'ОБА-94-00-12/06.05.2024', docDate: '2024-05-06' }, documentGuid: '{5d3c8b0e-2f4a-4c1e-9b7d-0123456789ab}' },
    kind: 'Молба',
    correspondents: [{ name: 'Иван Петров Иванов', city: 'София', egn: '8001010000', kind: 'Corr_Applicant' }],
    attachments: [{ fileName: 'молба.txt', mimeType: 'text/plain', content: { source: 'bytes', bytes: Buffer.from('Моля да ми бъде издадено удостоверение.', 'utf8') } }],
    about: 'Удостоверение за наследници',
    ...overrides,
  };
}

/** A registration request with a fixed GUID and date, so two builds of it are byte-identical. */
export function sampleRegistration(overrides: Partial<SeosDocument> = {}): SeosMessage {
  return buildRegistrationRequest(
    { sender: ALFA, recipient: BETA, messageGuid: '{c0ffee00-1234-4abc-8def-00000000beef}', messageDate: '2024-05-06T10:11:12.123+03:00' },
    sampleDocument(overrides),
  );
}
