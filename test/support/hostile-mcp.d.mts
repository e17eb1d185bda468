export declare const HOSTILE_TOOLS: Array<{
  name: string;
  description?: string;
  inputSchema: object;
}>;
export declare function hostileAnswers(message: unknown): Array<Record<string, unknown>> | null;
