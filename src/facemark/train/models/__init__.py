"""Networks brought in from elsewhere: dlib's face-recognition ResNet (`dlib_resnet`), read from dlib's own file
format (`dlib_format`), and the transfer-learning landmark baseline built on it."""
