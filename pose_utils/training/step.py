"""The training step: one update of the weights by gradient descent, as the report's loop wrote it.

`train_step` is what the engine (`training.loop`) compiles with `tf.function` and calls for every batch
(on every replica under tf.distribute); the engine decides what the loss is (`loss_of`: eq. 2 by
default), where the step runs and how often. Notebook 03 explains it and runs it by hand.
"""

from __future__ import annotations


def train_step(model, optimizer, x, loss_of):
    """One update: forward pass, loss, gradients, the optimiser's step.

    model: a keras.Model; optimizer: a built keras optimizer (Adam); x: a batch of clips
    (B, 8, H, W, 3) float32 in [0, 1]; loss_of: a function of the model's outputs returning the scalar
    loss to minimise. Returns (loss, outputs), both tensors.
    """
    ### BEGIN SOLUTION (notebooks/03_training.ipynb)
    import tensorflow as tf

    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        loss = loss_of(outputs)
    grads = tape.gradient(loss, variables)
    optimizer.apply(grads, variables)
    return loss, outputs
    ### END SOLUTION
