import fs from 'node:fs';
import { renderErrorCatalogue } from '../src/errors/document.ts';

fs.writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorCatalogue());
console.log('docs/errors.md written');
