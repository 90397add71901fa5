"""The LSTM's recurrence, written with TensorFlow ops: what `layers.BatchedLSTM` runs over the 8 frames.

Keras's LSTM keeps, for `units` u, an input kernel W (F, 4u), a recurrent kernel U (u, 4u) and a bias b
(4u,), each holding its four gates side by side in the order input, forget, cell, output. For every
frame t, with z = x_t·W + b + h·U:

    i = σ(z_i)   f = σ(z_f)   c = f ⊙ c + i ⊙ tanh(z_c)   o = σ(z_o)   h = o ⊙ tanh(c)

(σ the recurrent activation, a sigmoid; tanh the activation). The input projection x_t·W + b does not
depend on h, so `BatchedLSTM` computes it for every frame in one product first and hands it over here.
"""

from __future__ import annotations


def lstm_recurrence(projected, recurrent_kernel, h, c, activation=None, recurrent_activation=None):
    """Run the LSTM over the frames: returns (outputs, h, c).

    projected: (B, T, 4u), x_t·W + b for every frame; recurrent_kernel: (u, 4u); h, c: (B, u), the state
    before the first frame. outputs: (B, T, u), h after every frame; h and c: the state after the last.
    activation and recurrent_activation: callables on tensors (default tanh and sigmoid). T must be
    known when the graph is built (the clips' 8 frames).
    """
    import tensorflow as tf

    activation = activation or tf.tanh
    recurrent_activation = recurrent_activation or tf.sigmoid
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    units = recurrent_kernel.shape[0]
    outputs = []
    for t in range(projected.shape[1]):
        z = projected[:, t] + tf.matmul(h, recurrent_kernel)
        i = recurrent_activation(z[:, :units])
        f = recurrent_activation(z[:, units:2 * units])
        c = f * c + i * activation(z[:, 2 * units:3 * units])
        h = recurrent_activation(z[:, 3 * units:]) * activation(c)
        outputs.append(h)
    return tf.stack(outputs, axis=1), h, c
    ### END SOLUTION
