"""vLLM backend (the `gpu` extra): every continuation re-submits the whole text; prefix caching makes that cheap."""

from __future__ import annotations

from s1.infer.engine import Continuation, Request


class VLLMEngine:
    def __init__(self, model_path: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                 max_context: int = 32768, **llm_kwargs):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("backend=vllm needs vLLM: pip install -e '.[gpu]' (GPU machines only); "
                              "on CPU use eval.backend=transformers") from e
        llm_kwargs.setdefault("enable_prefix_caching", True)   # rounds share their prefix: no re-prefill
        self.llm = LLM(model=model_path, dtype=dtype, trust_remote_code=trust_remote_code,
                       max_model_len=max_context, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_context = max_context
        self.returns_token_ids = True      # Continuation.token_ids: a sweep can cut a shared continuation

    def decode(self, ids: list[int]) -> str:
        """Generated ids as vLLM's text (a shared sweep cuts continuations): vLLM holds back an incomplete
        multi-byte character at the end where a plain decode writes "\ufffd"."""
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False).rstrip("\ufffd")

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        from vllm import SamplingParams

        results: list[Continuation | None] = [None] * len(requests)
        todo = []
        for i, r in enumerate(requests):
            if r.max_new_tokens <= 0:   # never hand vLLM an empty or zero-token request
                results[i] = Continuation(text="", num_tokens=0, stop_reason="length")
            else:
                todo.append(i)
        if not todo:
            return results
        params = [SamplingParams(temperature=requests[i].temperature, max_tokens=requests[i].max_new_tokens,
                                 stop=requests[i].stop or None, seed=requests[i].seed,
                                 skip_special_tokens=False, spaces_between_special_tokens=False)
                  for i in todo]
        outs = self.llm.generate([requests[i].text for i in todo], params, use_tqdm=False)
        for i, out in zip(todo, outs):
            o = out.outputs[0]
            if o.finish_reason == "length":
                reason, matched = "length", None
            elif isinstance(o.stop_reason, str):
                reason, matched = "stop", o.stop_reason
            else:                       # None or a stop token id: end of sequence
                reason, matched = "eos", None
            results[i] = Continuation(text=o.text, num_tokens=len(o.token_ids), stop_reason=reason,
                                      matched_stop=matched, token_ids=list(o.token_ids))
        return results
