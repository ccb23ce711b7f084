"""`PromptExplorer`: a language model's next token under the sliders, and a sampled continuation.

The notebook twin of the web explorer's model mode: a prompt box over a
language model's next-token logits (the embedded model by default), the
:class:`~thermoscope.widgets.TemperatureExplorer` of those logits, and a
button that samples a continuation with the sliders' setting through
:func:`thermoscope.generation.continue_prompt`.
"""

from __future__ import annotations

from typing import Any

from thermoscope.widgets._controls import Displayed, ipywidgets
from thermoscope.widgets.logits import TemperatureExplorer

__all__ = ["PromptExplorer", "explore_prompt"]


class PromptExplorer(Displayed):
    """A language model's next-token distribution under the sliders, and sampled continuations.

    The notebook twin of the web explorer's model mode (build it with
    `explore_prompt`): a prompt box, a button that recomputes the next-token
    logits, the `TemperatureExplorer` of those logits (labels are the decoded
    tokens) and a button that samples a continuation with the sliders' setting.

    Attributes
    ----------
    prompt : ipywidgets.Textarea
    next_button, sample_button : ipywidgets.Button
    max_new_tokens, seed : ipywidgets.BoundedIntText
    output : ipywidgets.Textarea
        The last sampled continuation (read-only).
    explorer : TemperatureExplorer
        Rebuilt by :meth:`refresh` for each new prompt; the slider values carry over.
    widget : ipywidgets.VBox

    Examples
    --------
    >>> w = explore_prompt("import os\\nimport", temperature=0.0)
    >>> w.explorer.labels[int(w.explorer.probabilities.argmax())]
    ' os'
    """

    def __init__(
        self,
        prompt: str,
        model: Any = None,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        max_new_tokens: int = 40,
        seed: int = 0,
    ) -> None:
        from thermoscope.generation._inputs import MAX_NEW_TOKENS, check_max_new_tokens
        from thermoscope.generation.model import load_model

        self._model, self._tokenizer = load_model(model)
        start = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p}
        self.explorer = self._explorer_for(prompt, start)
        ipw = ipywidgets()
        self.prompt = ipw.Textarea(value=prompt, description="prompt", rows=3)
        self.next_button = ipw.Button(description="Next-token distribution")
        self.sample_button = ipw.Button(description="Sample a continuation")
        self.max_new_tokens = ipw.BoundedIntText(
            value=check_max_new_tokens(max_new_tokens),
            min=1,
            max=MAX_NEW_TOKENS,
            description="new tokens",
        )
        self.seed = ipw.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed")
        self.output = ipw.Textarea(value="", disabled=True, rows=6, description="sample")
        self.next_button.on_click(lambda _: self.refresh())
        self.sample_button.on_click(lambda _: self.sample())
        buttons = ipw.HBox([self.next_button, self.max_new_tokens, self.seed, self.sample_button])
        self.widget = ipw.VBox([self.prompt, buttons, self.explorer.widget, self.output])

    def _explorer_for(self, prompt: str, setting: dict[str, Any]) -> TemperatureExplorer:
        from thermoscope.generation.next_token import next_token_logits

        z = next_token_logits(self._model, self._tokenizer, prompt)
        labels = [self._tokenizer.decode([i]) or f"#{i}" for i in range(z.size)]
        return TemperatureExplorer(z, labels, **setting)

    def _setting(self) -> dict[str, Any]:
        e = self.explorer
        return {
            "temperature": float(e.temperature.value),
            "top_k": int(e.top_k.value),
            "top_p": float(e.top_p.value),
            "min_p": float(e.min_p.value),
        }

    def refresh(self) -> TemperatureExplorer:
        """Recompute the next-token distribution of the prompt box's text.

        Raises
        ------
        ValueError or TypeError
            Naming ``prompt`` when it is empty or does not fit the context.

        Examples
        --------
        >>> w = explore_prompt("import os\\nimport", top_k=3)
        >>> w.prompt.value = "def parse(self"
        >>> w.refresh().top_k.value  # new logits, the same slider values
        3
        """
        fresh = self._explorer_for(self.prompt.value, self._setting())
        children = list(self.widget.children)
        children[children.index(self.explorer.widget)] = fresh.widget
        self.widget.children = tuple(children)
        self.explorer.close()
        self.explorer = fresh
        return fresh

    def sample(self) -> str:
        """Sample one continuation of the prompt with the sliders' setting; show and return it.

        Examples
        --------
        >>> w = explore_prompt("import os\\nimport", temperature=0.0, max_new_tokens=3)
        >>> text = w.sample()
        >>> w.output.value == w.prompt.value + text
        True
        """
        from thermoscope.generation.next_token import continue_prompt

        text = continue_prompt(
            self._model,
            self._tokenizer,
            self.prompt.value,
            **self._setting(),
            max_new_tokens=int(self.max_new_tokens.value),
            seed=int(self.seed.value),
        ).text
        self.output.value = self.prompt.value + text
        return text

    def __repr__(self) -> str:
        return f"PromptExplorer(prompt={self.prompt.value!r}, {self.explorer!r})"


def explore_prompt(
    prompt: str,
    model: Any = None,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
    max_new_tokens: int = 40,
    seed: int = 0,
) -> PromptExplorer:
    """Explore a language model's next token for ``prompt`` with the temperature sliders.

    Parameters
    ----------
    prompt : str
        Non-empty text that fits the model's context.
    model : str or pathlib.Path, optional
        A local transformers causal-LM folder; default: the embedded model.
    temperature, top_k, top_p, min_p
        Start values of the sliders, as in `explore`.
    max_new_tokens : int, default 40
        Length of a sampled continuation.
    seed : int, default 0
        Seed of the sampled continuation.

    Returns
    -------
    PromptExplorer

    Examples
    --------
    >>> w = explore_prompt("import os\\nimport", top_k=2)
    >>> w.explorer.stats["kept_count"]
    2
    >>> len(w.sample()) > 0
    True
    """
    return PromptExplorer(
        prompt,
        model,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
