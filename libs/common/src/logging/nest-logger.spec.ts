import pino from 'pino';
import { PinoNestLogger } from './nest-logger.js';

function capture(level: string) {
  const lines: Array<{ level: number; msg: string; context?: string }> = [];
  const logger = pino(
    { level },
    { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  );
  return { nest: new PinoNestLogger(logger), lines };
}

describe('PinoNestLogger', () => {
  it("keeps Nest's start-up chatter out of the info log, and the rest in it", () => {
    const { nest, lines } = capture('info');
    nest.log('Mapped {/api/v1/summary, GET} route', 'RouterExplorer');
    nest.log('AnalyticsModule dependencies initialized', 'InstanceLoader');
    nest.log('Nest application successfully started', 'NestApplication');
    expect(lines.map((line) => line.msg)).toEqual(['Nest application successfully started']);
  });

  it('shows the chatter at debug', () => {
    const { nest, lines } = capture('debug');
    nest.log('Mapped {/api/v1/summary, GET} route', 'RouterExplorer');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 20, context: 'RouterExplorer' });
  });
});
