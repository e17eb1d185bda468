/** The tokenizer, named in the docs (docs/reference): gpt-tokenizer's o200k_base encoding. */
export const TOKENIZER = 'gpt-tokenizer o200k_base';

type Count = (text: string) => number;

/**
 * Counts the tokens a text costs a model, with a real BPE tokenizer (gpt-tokenizer's o200k_base,
 * the encoding of OpenAI's GPT-4o and later models; other vendors' tokenizers differ by a few
 * percent, so the counts are a budget, not a bill). The encoding's tables take ~0.4 s and ~60 MB
 * to load, so they are loaded once per process, on first use, and only by those who count.
 */
export class TokenCounter {
  private constructor(private readonly counter: Count) {}

  private static loading: Promise<TokenCounter> | undefined;

  static load(): Promise<TokenCounter> {
    TokenCounter.loading ??= import('gpt-tokenizer/encoding/o200k_base').then(
      (encoding) => new TokenCounter(encoding.countTokens as Count),
    );
    return TokenCounter.loading;
  }

  count(text: string): number {
    return this.counter(text);
  }
}
