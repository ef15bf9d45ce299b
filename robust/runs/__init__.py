"""What the commands run: from one options object to a result and its files.

The command line only parses its options into :class:`EvaluateOptions`, :class:`CompareOptions`
or :class:`TrainOptions` and prints what comes back; everything else happens here, in the
order of the data flow: resolve the model, the data, the attacks and the defenses from their
names and specs, evaluate (or compare, or train), then write ``result.json`` and
``report.html``. Values keep their command-line spelling (``eps=("8/255",)``,
``attacks=("pgd:steps=10",)``) and are checked here, each with a message naming it.
"""
