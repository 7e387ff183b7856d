"""The parts of the everyday-English sentence grammar that ``asr.corpora.sentences`` expands:
the templates (``templates.txt``), the slot functions (``subjects``, ``phrases``), one
sentence's state (``clause``), closed-class English (``english``) and the word lists
(``word_lists``, reading ``asr/corpora/lexicon``)."""
